"""SQLite response cache, keyed by a SHA-256 of the full request (the only disk writer besides store).

Re-running a build after a crash or Ctrl-C replays every answer already received, so no request is
paid for twice. Values are JSON, never pickle. WAL mode lets a second reader (`mwe cache stats`)
look while a build writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .errors import StoreError

__all__ = ["Cache", "default_cache_path"]


def default_cache_path() -> Path:
    base = os.environ.get("MWE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mwe"
    )
    return Path(base) / "cache.sqlite3"


class Cache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"response cache {self.path}: {getattr(exc, 'strerror', None) or exc}: set MWE_CACHE_DIR to a "
                "writable folder (a build can also run with --no-cache)"
            ) from None
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, provider TEXT NOT NULL, keys TEXT NOT NULL,"
            " created REAL NOT NULL, done INTEGER NOT NULL DEFAULT 0)"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Each answer is committed on its own, so a kill loses at most the one in flight."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                (key, json.dumps(value, ensure_ascii=False), time.time()),
            )
        except sqlite3.Error as exc:  # a full disk or a cache made read-only under a running build
            raise StoreError(
                f"response cache {self.path}: cannot store an answer ({exc}); the answers stored so far are "
                "kept: free space or set MWE_CACHE_DIR to a writable folder, then re-run"
            ) from None

    # Batch jobs: recorded before polling starts so a killed run polls the same batch again.
    def add_batch(self, batch_id: str, provider: str, keys: list[str]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO batches (id, provider, keys, created, done) VALUES (?, ?, ?, ?, 0)",
            (batch_id, provider, json.dumps(keys), time.time()),
        )

    def open_batches(self, provider: str) -> list[tuple[str, list[str]]]:
        rows = self._db.execute(
            "SELECT id, keys FROM batches WHERE provider = ? AND done = 0 ORDER BY created", (provider,)
        ).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def close_batch(self, batch_id: str) -> None:
        self._db.execute("UPDATE batches SET done = 1 WHERE id = ?", (batch_id,))

    def stats(self) -> dict[str, Any]:
        count = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        open_batches = self._db.execute("SELECT COUNT(*) FROM batches WHERE done = 0").fetchone()[0]
        oldest, newest = self._db.execute("SELECT MIN(created), MAX(created) FROM responses").fetchone()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path),
            "entries": count,
            "bytes": size,
            "open_batches": open_batches,
            "oldest": oldest,
            "newest": newest,
        }

    def clear(self, older_than_s: float | None = None) -> int:
        """Delete cached answers (all, or those older than `older_than_s`); open batch records stay."""
        where, args = ("WHERE created < ?", (time.time() - older_than_s,)) if older_than_s else ("", ())
        count = int(self._db.execute(f"SELECT COUNT(*) FROM responses {where}", args).fetchone()[0])
        self._db.execute(f"DELETE FROM responses {where}", args)
        self._db.execute("DELETE FROM batches WHERE done = 1")
        self._db.execute("VACUUM")
        return count

    def close(self) -> None:
        self._db.close()

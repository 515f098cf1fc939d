"""Versioned, immutable datasets under generated/<threat-model>/v<N>/ (the only writer there).

A version is written into a hidden temporary directory and renamed into place under a lock, with
manifest.json written last. A crash or Ctrl-C therefore leaves either a whole version or none, and
never touches an earlier one. Published files are made read-only to say they are never edited.

Fake data stays apart: real and FAKE builds (manifest `fake: true`) share one line of version
numbers, but a threat-model folder (`generated/<tm>`, and LATEST) means its newest *real* version;
only a folder with no real version falls back to its newest FAKE one. So a fake build never
replaces a real dataset for a command given the folder; fake versions are reached by naming them
(`generated/<tm>/v3`), and reading one issues a FakeDataWarning, which the CLI prints on stderr.
The folder is resolved from the manifests, not from LATEST, so a LATEST written by an older mwe
cannot send a command to fake data either.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .dataset import Dataset
from .errors import StoreError
from .items import Item
from .manifest import Manifest

__all__ = ["FakeDataWarning", "Store", "check_writable_dir", "is_fake", "load", "newer_fake", "resolve"]

_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_TMP_PREFIX = ".tmp-"


class FakeDataWarning(UserWarning):
    """A FAKE dataset (made by the fake provider) was read: its items are templated test text."""


def _manifest(version_dir: Path) -> Manifest:
    return Manifest.read(version_dir / "manifest.json")


def is_fake(version_dir: str | Path) -> bool:
    """Whether a published version was made by the fake provider (its manifest says `fake: true`)."""
    return _manifest(Path(version_dir)).fake


def _published(tm_dir: Path) -> list[Path]:
    """The published version directories of a threat-model folder, newest first."""
    found = [_VERSION.match(p.name) for p in tm_dir.iterdir() if p.is_dir()] if tm_dir.is_dir() else []
    versions = sorted((int(m.group(1)) for m in found if m), reverse=True)
    return [tm_dir / f"v{v}" for v in versions if (tm_dir / f"v{v}" / "manifest.json").is_file()]


def _newest(tm_dir: Path, fake: bool | None, dirs: list[Path] | None = None) -> Path | None:
    """The newest version in `tm_dir` of one kind (fake True/False), or, with None, the one the
    folder stands for: the newest real version, else the newest fake one. `dirs`: the folder's
    `_published` list when the caller has it already."""
    dirs = _published(tm_dir) if dirs is None else dirs
    if fake is not None:
        return next((d for d in dirs if is_fake(d) == fake), None)
    return next((d for d in dirs if not is_fake(d)), dirs[0] if dirs else None)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    return count


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def check_writable_dir(folder: Path, what: str, hint: str) -> None:
    """Create `folder` and write a probe into it, or raise StoreError naming it: before any work
    that would be lost when its output cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StoreError.of(exc, f"{what} is not writable:", folder, hint) from None


class Store:
    def __init__(self, root: str | Path = "generated") -> None:
        self.root = Path(root)

    def check_writable(self) -> None:
        """Fail before any model call, so an unwritable --out never wastes a paid request."""
        check_writable_dir(self.root, "output directory", "choose another --out")

    def versions(self, threat_model: str) -> list[int]:
        tm_dir = self.root / threat_model
        if not tm_dir.is_dir():
            return []
        found = [_VERSION.match(p.name) for p in tm_dir.iterdir() if p.is_dir()]
        return sorted(int(m.group(1)) for m in found if m)

    def calibration(self, threat_model: str, judge: str) -> dict[str, Any] | None:
        """The stored `mwe calibrate` result for this judge model, if any."""
        path = self.root / threat_model / "calibration.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8")).get(judge)
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: unreadable calibration record: {exc}") from None
        return record if isinstance(record, dict) else None

    def write_calibration(self, threat_model: str, record: dict[str, Any]) -> Path:
        """Add or replace one judge's calibration, atomically (temp file, then rename)."""
        self.check_writable()
        tm_dir = self.root / threat_model
        with self._locked(tm_dir):
            path = tm_dir / "calibration.json"
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            data[record["judge"]] = record
            tmp = tm_dir / f"{_TMP_PREFIX}calibration-{uuid.uuid4().hex}.json"
            _write_text(tmp, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            os.replace(tmp, path)
        return path

    def latest(self, threat_model: str, fake: bool | None = None) -> Path | None:
        """The version `<out>/<threat-model>` stands for (newest real, else newest fake), or with
        `fake` given the newest version of that kind."""
        return _newest(self.root / threat_model, fake)

    @contextlib.contextmanager
    def run_lock(self, threat_model: str) -> Iterator[None]:
        """One build of a threat model into this directory at a time. An OS lock (flock; on Windows
        LockFileEx, through filelock), not a pid file: the kernel drops it when the holder dies, so a
        killed build never leaves a stale lock. The file holds the holder's pid, for the message."""
        from filelock import lock_descriptor, unlock_descriptor

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".{threat_model}.build.lock"  # beside, not inside: a failed build leaves no folder
        with path.open("a+") as lock:
            if not lock_descriptor(lock.fileno(), blocking=False):
                lock.seek(0)
                try:
                    holder = lock.read().strip() or "unknown"
                except OSError:  # Windows: the holder's lock covers the bytes the pid is in
                    holder = "unknown"
                raise StoreError(
                    f"another build of {threat_model} into {self.root} is running (pid {holder}); "
                    "wait for it to finish, or build into another --out"
                )
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            try:
                yield
            finally:
                unlock_descriptor(lock.fileno())

    @contextlib.contextmanager
    def _locked(self, tm_dir: Path) -> Iterator[None]:
        from filelock import lock_descriptor, unlock_descriptor

        tm_dir.mkdir(parents=True, exist_ok=True)
        with (tm_dir / ".lock").open("a") as lock:  # "a": opening must not truncate a file another holds locked
            lock_descriptor(lock.fileno())
            try:
                yield
            finally:
                unlock_descriptor(lock.fileno())

    def publish(
        self,
        threat_model: str,
        items: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
        make_manifest: Callable[[int, dict[str, int]], Manifest | dict[str, Any]],
        make_card: Callable[[Manifest], str],
    ) -> Path:
        """Write v<N+1> atomically; the manifest callback learns the version and the line counts
        (a plain dict it returns is read as a Manifest, so what is written always loads)."""
        tm_dir = self.root / threat_model
        with self._locked(tm_dir):
            # Only a dead process can have left a temp dir behind: we hold the only lock.
            for stale in tm_dir.glob(f"{_TMP_PREFIX}*"):
                shutil.rmtree(stale, ignore_errors=True)
            version = (self.versions(threat_model) or [0])[-1] + 1
            tmp = tm_dir / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                tmp.mkdir()
                counts = {
                    "items": _write_jsonl(tmp / "items.jsonl", items),
                    "rejected": _write_jsonl(tmp / "rejected.jsonl", rejected),
                }
                made = make_manifest(version, counts)
                manifest = made if isinstance(made, Manifest) else Manifest.model_validate(made)
                _write_text(tmp / "README.md", make_card(manifest))
                _write_text(tmp / "manifest.json", json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n")
                for f in tmp.iterdir():
                    f.chmod(0o444)
                final = tm_dir / f"v{version}"
                os.rename(tmp, final)
            except OSError as exc:  # disk full, permissions, a vanished directory
                shutil.rmtree(tmp, ignore_errors=True)
                raise StoreError(
                    f"cannot publish {threat_model} v{version} in {tm_dir}: {exc.strerror or exc}; nothing was "
                    "published and earlier versions are untouched; every answer is cached, so a re-run resumes"
                ) from None
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            current = _newest(tm_dir, None) or final  # a fake build does not move LATEST off a real version
            latest_tmp = tm_dir / f"{_TMP_PREFIX}LATEST-{uuid.uuid4().hex[:8]}"
            _write_text(latest_tmp, f"{current.name}\n")
            os.replace(latest_tmp, tm_dir / "LATEST")
        return final

    def latest_manifest(self, threat_model: str, fake: bool | None = None) -> Manifest | None:
        path = self.latest(threat_model, fake)
        return None if path is None else _manifest(path)


def resolve(path: str | Path) -> Path:
    """The version directory a path names: itself, or for a threat-model folder its newest real
    version (the newest fake one only when it has no real version)."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return path
    version_dir = _newest(path, None)
    if version_dir is None:
        raise StoreError(
            f"{path} is not a dataset version (no manifest.json) nor a threat-model folder (no published version)"
        )
    return version_dir


def newer_fake(path: str | Path) -> Path | None:
    """A FAKE version newer than the real one a threat-model folder stands for: commands given
    the folder skip it, and a user who just ran a fake build should hear where it went."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return None  # a version was named: nothing was skipped
    dirs = _published(path)
    shown = _newest(path, None, dirs)
    # anything newer than what the folder stands for is fake: it stands for the newest real version
    return dirs[0] if dirs and shown is not None and dirs[0] != shown else None


def load(path: str | Path) -> Dataset:
    """Load a version directory, or a `generated/<threat-model>` folder's newest real version (its
    newest FAKE one when it has none). Reading a FAKE version issues a FakeDataWarning."""
    version_dir = resolve(path)
    manifest = Manifest.read(version_dir / "manifest.json")
    try:
        with (version_dir / "items.jsonl").open(encoding="utf-8") as fh:
            items = [Item.model_validate_json(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read dataset at {version_dir}: {exc}") from None
    if manifest.fake:
        real = _newest(version_dir.parent, False)
        warnings.warn(
            f"{version_dir} is FAKE DATA (templated text from the fake provider, for tests and demos)"
            + (f"; the newest real version is {real}" if real else "; this threat model has no real version"),
            FakeDataWarning,
            stacklevel=2,
        )
    return Dataset(items, version_dir, manifest)

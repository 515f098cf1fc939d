"""Keeps API keys out of logs, error text, manifests and caches.

Keys are read from the environment only, and each key read is registered here. Every log record
made afterwards (ours, the SDKs', instructor's) is formatted and scrubbed by a record factory, and
every error message mwe raises about a provider goes through `redact`.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["redact", "register_secret"]

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_INSTALLED = False
# Things that look like keys even if we never read them (a server may echo a key in its error body).
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{12,}")


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return _KEYLIKE.sub("[REDACTED]", text)


def register_secret(value: str) -> None:
    if len(value) < 6:  # too short to search for without mangling ordinary text
        return
    with _LOCK:
        _SECRETS.add(value)
        _install()


def _install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logger's problem, not ours
            return record
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
    _INSTALLED = True

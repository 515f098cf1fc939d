"""The one retry layer of the API providers (tenacity): which failures are worth another try,
how long to wait, and how a failure is named in one line without a key in it.

429, 408, 409, 425, 5xx, 529, timeouts and dropped connections are retried with exponential
backoff and full jitter, or after the server's `retry-after-ms` / `retry-after` when it sends one;
a 429 pauses every worker. A timed-out request is retried once at most: the server may still be
working on the first attempt. The provider (see _api) decides what a failure that outlives the
retries becomes.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from .._secrets import redact

__all__ = ["AUTH_STATUS", "RETRY_STATUS", "retry_after", "retrying", "status_of"]

_log = logging.getLogger("mwe.providers")

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
AUTH_STATUS = frozenset({401, 403})


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _headers(exc: BaseException) -> Mapping[str, str]:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if headers is not None else {}


def retry_after(exc: BaseException) -> float | None:
    """The server's requested delay in seconds: retry-after-ms, then retry-after (seconds or date)."""
    headers = _headers(exc)
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def _is_timeout(exc: BaseException) -> bool:
    return type(exc).__name__ == "APITimeoutError" or isinstance(exc, TimeoutError)


def _is_transient(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is not None:
        return status in RETRY_STATUS
    name = type(exc).__name__
    return name in ("APITimeoutError", "APIConnectionError") or isinstance(exc, (TimeoutError, ConnectionError))


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "an unknown error"
    status = status_of(exc)
    text = redact(str(exc))[:300]
    return f"HTTP {status}: {text}" if status is not None else f"{type(exc).__name__}: {text}"


def retrying(
    max_retries: int,
    label: str,
    *,
    pause: Callable[[float], None],
    timed_out: Callable[[], None],
    counted: Callable[[], None],
) -> AsyncRetrying:
    """The policy for one call (made afresh per call: its one timeout retry is that call's).
    `pause` stops every worker after a 429, `timed_out` tells the concurrency pool, `counted`
    counts each retry; the last error is re-raised as it came."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = retry_after(exc) if exc is not None else None
        backoff = float(wait_random_exponential(multiplier=0.5, max=30)(state))
        delay = min(hint, 300.0) if hint is not None else backoff
        if exc is not None and status_of(exc) == 429:
            pause(delay)  # every worker backs off, not only this one
        return delay

    def log_retry(state: RetryCallState) -> None:
        counted()
        exc = state.outcome.exception() if state.outcome else None
        _log.info("%s: retrying after %s (attempt %d)", label, _describe(exc), state.attempt_number)

    timeouts = 0

    def retry_on(exc: BaseException) -> bool:
        nonlocal timeouts
        if _is_timeout(exc):
            timeouts += 1
            timed_out()
            return timeouts <= 1  # once: the server may still be working on the first attempt
        return _is_transient(exc)

    return AsyncRetrying(
        retry=retry_if_exception(retry_on),
        wait=wait,
        stop=stop_after_attempt(max_retries + 1),
        before_sleep=log_retry,
        reraise=True,
    )

"""Reading what an SDK handed back when an answer went wrong: its token usage, its raw text, and
the reason in one line; instructor's wrapping taken off a transport error so it can be retried."""

from __future__ import annotations

from typing import Any

from .._secrets import redact

__all__ = ["usage_pair"]


def usage_pair(usage: Any) -> tuple[int, int]:
    """(input, output) tokens from an Anthropic or OpenAI usage object, or zeros."""
    if usage is None:
        return 0, 0
    i = getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", None) or 0
    o = getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", None) or 0
    return int(i), int(o)


def _unwrap(exc: BaseException) -> BaseException:
    """instructor wraps a transport error in InstructorRetryException; retry on the cause."""
    while type(exc).__name__ == "InstructorRetryException" and exc.__cause__ is not None:
        cause = exc.__cause__
        if type(cause).__module__.split(".")[0] in ("pydantic", "pydantic_core", "json", "instructor"):
            break
        exc = cause
    return exc


def _raw_answer(completion: Any) -> str:
    """The text of a Chat Completions or Messages answer (content or tool arguments), whatever
    its shape; "" when there is none."""
    if completion is None:
        return ""
    parts: list[str] = []
    for choice in getattr(completion, "choices", None) or []:
        message = getattr(choice, "message", None)
        if message is None:
            continue
        parts.append(str(getattr(message, "content", None) or ""))
        for call in getattr(message, "tool_calls", None) or []:
            parts.append(str(getattr(getattr(call, "function", None), "arguments", "") or ""))
        finish = getattr(choice, "finish_reason", None)
        if finish == "length":
            parts.append("[cut at max_tokens]")
    for block in getattr(completion, "content", None) or []:  # Anthropic
        text = getattr(block, "text", None)
        parts.append(str(text) if text is not None else str(getattr(block, "input", "") or ""))
    return "\n".join(p for p in parts if p)


def _short_reason(exc: BaseException) -> str:
    """The validation error in one line: pydantic's first complaint, not the whole prompt."""
    failed = getattr(exc, "failed_attempts", None) or []
    last = getattr(failed[-1], "exception", None) if failed else None
    text = redact(str(last if last is not None else exc))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("For further")]
    return " | ".join(lines[:3])[:300]

"""`anthropic/<model>`: the Messages API through the official SDK, structured output via instructor.

The fixed prefix of every stage's prompt (`ChatRequest.system`: instructions, rubric, few-shot
block) is sent as a system block marked `cache_control: ephemeral`, so requests after the first
read it from Anthropic's prompt cache; the ledger counts those reads and writes apart. `--batch`
goes through the Message Batches API at half price.

The Messages API of this SDK generation takes no `temperature`; requests differ by their prompts
(facet, variance prompt, batch number), and the request's temperature stays in its cache key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from .._secrets import redact
from ..errors import MissingDependency
from ._answers import usage_pair
from ._api import ApiProvider, RequestFailed
from .base import ChatRequest, Completion, CompletionRequest, TokenUsage

__all__ = ["AnthropicProvider", "message_completion"]

_INSTALL = "pip install anthropic instructor (both are mwe dependencies: reinstall mwe)"


def anthropic_omit() -> Any:
    import anthropic

    return anthropic.omit


def _system(req: ChatRequest) -> list[dict[str, Any]]:
    return [{"type": "text", "text": req.system, "cache_control": {"type": "ephemeral"}}]


def _usage(usage: Any, total: Any = None) -> TokenUsage:
    i, o = usage_pair(total if total is not None else usage)
    return TokenUsage(
        input_tokens=i,
        output_tokens=o,
        cache_read_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
        cache_write_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
    )


def message_completion(message: Any, schema: Any, batch: bool = False) -> Completion:
    """A Messages API answer (live or from a batch) checked against the schema on our side."""
    usage = _usage(getattr(message, "usage", None))
    for block in getattr(message, "content", []) or []:
        if getattr(block, "type", None) == "tool_use":
            try:
                data = schema.model_validate(block.input).model_dump(mode="json")
            except Exception as exc:
                return Completion(
                    redact(json.dumps(block.input, default=str)),
                    error=f"the answer did not fit the {schema.__name__} schema: {redact(str(exc))[:300]}",
                    batch=batch,
                    invalid=True,
                    **usage,
                )
            cut = getattr(message, "stop_reason", None) == "max_tokens"
            return Completion("", data=data, batch=batch, truncated=cut, **usage)
    text = " ".join(getattr(b, "text", "") for b in getattr(message, "content", []) or [])
    return Completion(
        "",
        error=f"no structured answer (stop reason {getattr(message, 'stop_reason', '?')}): {redact(text)[:200]}",
        batch=batch,
        **usage,
    )


class AnthropicProvider(ApiProvider):
    name: ClassVar[str] = "anthropic"
    key_env: ClassVar[str] = "ANTHROPIC_API_KEY"
    supports_batch: ClassVar[bool] = True
    prices: ClassVar[tuple[tuple[str, float, float], ...]] = (
        ("claude-opus-4-5*", 5.0, 25.0),
        ("claude-opus-4*", 15.0, 75.0),
        ("claude-sonnet-4*", 3.0, 15.0),
        ("claude-3-7-sonnet*", 3.0, 15.0),
        ("claude-haiku-4*", 1.0, 5.0),
        ("claude-3-5-haiku*", 0.8, 4.0),
    )
    """List prices (checked 2026-11); cache writes 1.25x and reads 0.1x the input price."""

    @classmethod
    def inspect_model(cls, model: str) -> str:
        """Inspect's own Anthropic provider (its API gives no log-probabilities: `mwe eval` samples)."""
        return f"anthropic/{model}"

    def _import_sdk(self) -> None:
        try:
            import anthropic  # noqa: F401
            import instructor  # noqa: F401
        except ImportError:
            raise MissingDependency(_INSTALL) from None

    def _make_client(self) -> Any:
        import anthropic

        http = anthropic.DefaultAsyncHttpxClient(event_hooks={"response": [self._on_response]})
        return anthropic.AsyncAnthropic(
            api_key=self.api_key(),
            base_url=self.settings.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
            max_retries=0,  # the one retry layer is ours (providers/_retry.py)
            timeout=self.timeout,
            http_client=http,
        )

    def _instructor(self) -> Any:
        if getattr(self, "_ins", None) is None:
            import instructor

            self._ins = instructor.from_anthropic(self.client(), mode=instructor.Mode.TOOLS)
        return self._ins

    async def _structured(self, req: ChatRequest) -> Completion:
        obj, raw = await self._instructor().create_with_completion(
            model=self.model,
            system=_system(req),
            messages=[{"role": "user", "content": req.prompt}],
            response_model=req.schema,
            max_tokens=req.max_tokens,
            max_retries=0,  # the re-ask on a schema mismatch is the engine's (cached); transport retries are ours
        )
        usage = _usage(raw.usage, getattr(obj, "_total_usage", None))
        data = req.schema.model_validate(obj.model_dump()).model_dump(mode="json")
        return Completion("", data=data, truncated=getattr(raw, "stop_reason", None) == "max_tokens", **usage)

    async def _complete(self, req: CompletionRequest) -> Completion:
        message = await self.client().messages.create(
            model=self.model,
            messages=[{"role": "user", "content": req.prompt}],
            max_tokens=req.max_tokens,
            stop_sequences=list(req.stop) or anthropic_omit(),
        )
        text = "".join(getattr(b, "text", "") for b in message.content)
        if not text.strip():
            raise RequestFailed(f"empty answer (stop reason {message.stop_reason})", *usage_pair(message.usage))
        return Completion(text, truncated=message.stop_reason == "max_tokens", **_usage(message.usage))

    # --- Message Batches --------------------------------------------------------------------
    def submit_batch(self, requests: Sequence[ChatRequest], ids: Sequence[str]) -> str:
        entries = []
        for req, custom_id in zip(requests, ids, strict=True):
            entry = self._batch_request(req, custom_id).to_anthropic_format()
            entry["params"]["system"] = _system(req)
            entry["params"].pop("temperature", None)
            entries.append(entry)
        batch = self._sync(lambda: self.client().messages.batches.create(requests=entries))
        return str(batch.id)

    def batch_done(self, batch_id: str) -> bool:
        batch = self._sync(lambda: self.client().messages.batches.retrieve(batch_id))
        return bool(batch.processing_status == "ended")

    def batch_results(self, batch_id: str, schemas: dict[str, Any]) -> dict[str, Completion]:
        async def fetch() -> dict[str, Completion]:
            out: dict[str, Completion] = {}
            async for entry in await self.client().messages.batches.results(batch_id):
                schema = schemas.get(entry.custom_id)
                if schema is None:
                    continue
                if entry.result.type == "succeeded":
                    out[entry.custom_id] = message_completion(entry.result.message, schema, batch=True)
                else:
                    out[entry.custom_id] = Completion("", error=f"batch request {entry.result.type}", batch=True)
            return out

        return self._sync(fetch)

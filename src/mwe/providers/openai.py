"""`openai/<model>` and `openai-compatible/<model>` through the official SDK and instructor.

`openai-compatible` is any server that speaks the Chat Completions wire format: vLLM, Ollama,
llama-server, llama-cpp-python's server, hosted gateways. Its base URL comes from --base-url or
MWE_BASE_URL and its key (often not needed) from the variable named by --api-key-env (default
MWE_API_KEY). Servers differ in how they hold an answer to a schema, and a small model held only
by "answer in JSON" rarely writes JSON that fits, so the strongest enforcement the server offers
is used: a JSON-schema `response_format`, then a tool with the schema, then JSON mode with the
schema in the prompt. A one-request probe picks it the first time a server is used and the choice
is remembered per base URL and model in the cache database; `--structured` or `structured` in
mwe.toml sets it instead. Everything is validated here too, with one re-ask.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from .._secrets import redact
from ..errors import MissingDependency, UsageError
from ._api import ApiProvider, RequestFailed
from ._retry import status_of
from .base import ChatRequest, Completion, CompletionRequest, EmbedRequest, ProviderSettings, TokenUsage

__all__ = ["STRUCTURED_MODES", "OpenAICompatibleProvider", "OpenAIProvider", "chat_completion"]

_INSTALL = "pip install openai instructor (both are mwe dependencies: reinstall mwe)"
_log = logging.getLogger("mwe.providers")

STRUCTURED_MODES = ("json_schema", "tools", "json")
"""Strongest first: response_format with a JSON schema, a tool whose parameters are the schema,
JSON mode with the schema in the prompt (instructor's JSON_SCHEMA, TOOLS and JSON modes)."""
_INSTRUCTOR_MODES = {"json_schema": "JSON_SCHEMA", "tools": "TOOLS", "json": "JSON"}


class _Probe(BaseModel):
    """An answer only a server that enforces the schema gives to "Say hello"."""

    answer: Literal["mwe-probe-ok"]


def _usage(usage: Any) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    return TokenUsage(
        input_tokens=prompt - cached,
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cache_read_tokens=cached,
    )


def chat_completion(body: dict[str, Any], schema: Any, batch: bool = False) -> Completion:
    """A Chat Completions answer from a batch file, checked against the schema on our side."""
    from openai.types.chat import ChatCompletion

    completion = ChatCompletion.model_validate(body)
    usage = _usage(completion.usage)
    message = completion.choices[0].message if completion.choices else None
    text = (message.content or "") if message else ""
    if message is not None and message.tool_calls:
        text = message.tool_calls[0].function.arguments  # type: ignore[union-attr]
    if message is not None and getattr(message, "refusal", None):
        return Completion("", error=f"refused: {redact(str(message.refusal))[:200]}", batch=batch, **usage)
    try:
        data = schema.model_validate(json.loads(text)).model_dump(mode="json")
    except Exception as exc:
        return Completion(
            redact(text),
            error=f"the answer did not fit the {schema.__name__} schema: {redact(str(exc))[:300]}",
            batch=batch,
            invalid=True,
            **usage,
        )
    return Completion("", data=data, batch=batch, **usage)


class OpenAIProvider(ApiProvider):
    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "OPENAI_API_KEY"
    supports_batch: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = True
    inspect_logprobs: ClassVar[bool] = True
    prices: ClassVar[tuple[tuple[str, float, float], ...]] = (
        ("gpt-5-nano*", 0.05, 0.4),
        ("gpt-5-mini*", 0.25, 2.0),
        ("gpt-5*", 1.25, 10.0),
        ("gpt-4.1-nano*", 0.1, 0.4),
        ("gpt-4.1-mini*", 0.4, 1.6),
        ("gpt-4.1*", 2.0, 8.0),
        ("gpt-4o-mini*", 0.15, 0.6),
        ("gpt-4o*", 2.5, 10.0),
        ("o4-mini*", 1.1, 4.4),
        ("o3*", 2.0, 8.0),
        ("text-embedding-3-small", 0.02, 0.0),
        ("text-embedding-3-large", 0.13, 0.0),
    )
    """List prices (checked 2026-11)."""
    cache_write_price: ClassVar[float] = 1.0
    """OpenAI does not charge for writing the prompt cache."""
    cache_read_price: ClassVar[float] = 0.5
    cache_read_prices: ClassVar[tuple[tuple[str, float], ...]] = (("gpt-5*", 0.1), ("gpt-4.1*", 0.25), ("o*", 0.25))
    """Cached input as a share of the input price, by model family (gpt-4o and others: 0.5)."""
    token_param: ClassVar[str] = "max_completion_tokens"

    structured_default: ClassVar[str] = "tools"

    def __init__(self, model: str, settings: ProviderSettings) -> None:
        super().__init__(model, settings)
        self._ins: dict[str, Any] = {}
        """instructor clients by structured-output mode."""
        self._mode_used: str | None = None
        """The mode answers are held to once it is known (recorded in the manifest)."""
        self._mode_lock = asyncio.Lock()
        """Concurrent first requests wait for one probe."""

    async def structured_mode(self) -> str:
        return self.settings.structured or self.structured_default

    def _base_url(self) -> str | None:
        return self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def endpoint(self) -> str:
        return self._base_url() or "https://api.openai.com/v1"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self._mode_used:
            d["structured"] = self._mode_used
        return d

    def _import_sdk(self) -> None:
        try:
            import instructor  # noqa: F401
            import openai  # noqa: F401
        except ImportError:
            raise MissingDependency(_INSTALL) from None

    def _make_client(self) -> Any:
        import openai

        http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [self._on_response]})
        return openai.AsyncOpenAI(
            api_key=self.api_key(),
            base_url=self._base_url(),
            max_retries=0,  # the one retry layer is ours (providers/_retry.py)
            timeout=self.timeout,
            http_client=http,
        )

    def _instructor(self, mode: str) -> Any:
        clients = self._ins
        if mode not in clients:
            import instructor

            clients[mode] = instructor.from_openai(self.client(), mode=instructor.Mode[_INSTRUCTOR_MODES[mode]])
        return clients[mode]

    async def _structured(self, req: ChatRequest) -> Completion:
        mode = await self.structured_mode()
        obj, raw = await self._instructor(mode).create_with_completion(
            model=self.model,
            messages=[{"role": "system", "content": req.system}, {"role": "user", "content": req.prompt}],
            response_model=req.schema,
            temperature=req.temperature,
            seed=req.seed,
            timeout=self.request_timeout(req.max_tokens),
            max_retries=0,  # the re-ask on a schema mismatch is the engine's (cached); transport retries are ours
            **{self.token_param: req.max_tokens},
        )
        usage = _usage(raw.usage)
        total = getattr(obj, "_total_usage", None)
        if total is not None and getattr(total, "prompt_tokens", None):
            usage["input_tokens"] = int(total.prompt_tokens) - usage.get("cache_read_tokens", 0)
            usage["output_tokens"] = int(total.completion_tokens or 0)
        return Completion("", data=req.schema.model_validate(obj.model_dump()).model_dump(mode="json"), **usage)

    async def _complete(self, req: CompletionRequest) -> Completion:
        completion = await self.client().chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": req.prompt}],
            temperature=req.temperature,
            stop=list(req.stop)[:4] or None,
            seed=req.seed,
            timeout=self.request_timeout(req.max_tokens),
            **{self.token_param: req.max_tokens},
        )
        text = completion.choices[0].message.content or "" if completion.choices else ""
        if not text.strip():
            raise RequestFailed("empty answer")
        cut = bool(completion.choices) and completion.choices[0].finish_reason == "length"
        return Completion(text, truncated=cut, **_usage(completion.usage))

    async def _embed(self, req: EmbedRequest) -> Completion:
        answer = await self.client().embeddings.create(model=self.model, input=list(req.texts))
        rows = sorted(answer.data, key=lambda d: d.index)
        if len(rows) != len(req.texts):
            raise RequestFailed(f"asked for {len(req.texts)} embeddings, got {len(rows)}")
        tokens = int(getattr(answer.usage, "prompt_tokens", 0) or 0)
        return Completion("", input_tokens=tokens, data={"vectors": [list(r.embedding) for r in rows]})

    # --- Batch API ----------------------------------------------------------------------------
    def submit_batch(self, requests: Sequence[ChatRequest], ids: Sequence[str]) -> str:
        lines = []
        for req, custom_id in zip(requests, ids, strict=True):
            entry = self._batch_request(req, custom_id).to_openai_format()
            body = entry["body"]
            body[self.token_param] = body.pop("max_tokens")
            lines.append(json.dumps(entry))
        payload = ("\n".join(lines) + "\n").encode()

        async def submit() -> str:
            client = self.client()
            file = await client.files.create(file=("mwe-batch.jsonl", payload), purpose="batch")
            batch = await client.batches.create(
                input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            return str(batch.id)

        return self._sync(submit)

    def batch_done(self, batch_id: str) -> bool:
        batch = self._sync(lambda: self.client().batches.retrieve(batch_id))
        return batch.status in ("completed", "failed", "expired", "cancelled")

    def batch_results(self, batch_id: str, schemas: dict[str, Any]) -> dict[str, Completion]:
        async def fetch() -> dict[str, Completion]:
            client = self.client()
            batch = await client.batches.retrieve(batch_id)
            out: dict[str, Completion] = {}
            for file_id in (batch.output_file_id, batch.error_file_id):
                if not file_id:
                    continue
                content = await client.files.content(file_id)
                for line in content.text.splitlines():
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    schema = schemas.get(row.get("custom_id", ""))
                    if schema is None:
                        continue
                    response = row.get("response") or {}
                    if response.get("status_code") == 200:
                        out[row["custom_id"]] = chat_completion(response["body"], schema, batch=True)
                    else:
                        error = redact(json.dumps(row.get("error") or response.get("body") or {}))[:200]
                        out[row["custom_id"]] = Completion("", error=f"batch request failed: {error}", batch=True)
            return out

        return self._sync(fetch)


class OpenAICompatibleProvider(OpenAIProvider):
    name: ClassVar[str] = "openai-compatible"
    key_env: ClassVar[str] = "MWE_API_KEY"
    free: ClassVar[bool] = True
    """A self-hosted server is priced at zero unless mwe.toml gives it a price."""
    needs_key: ClassVar[bool] = False
    supports_batch: ClassVar[bool] = False
    token_param: ClassVar[str] = "max_tokens"

    def start_concurrency(self) -> int:
        return min(2, self.concurrency)  # grown while latency holds (a single-slot server stays at 1-2)

    def _base_url(self) -> str | None:
        return self.settings.base_url or os.environ.get("MWE_BASE_URL") or None

    def _chosen_mode(self) -> str | None:
        from ..config import model_config

        chosen = self.settings.structured or model_config(self.label).get("structured")
        if chosen is not None and chosen not in STRUCTURED_MODES:
            raise UsageError(f"structured output mode {chosen!r} is not one of {', '.join(STRUCTURED_MODES)}")
        return str(chosen) if chosen else None

    def _memory_key(self) -> str:
        return f"structured-mode {self._base_url()} {self.model}"

    async def structured_mode(self) -> str:
        """The mode this server is held to: set by the user, remembered from an earlier probe, or
        probed now (once per provider; concurrent first requests wait for the one probe)."""
        if self._mode_used:
            return self._mode_used
        async with self._mode_lock:
            if self._mode_used:
                return self._mode_used
            mode = self._chosen_mode() or _recall(self._memory_key())
            if mode is None:
                mode = await self._probe()
                _remember(self._memory_key(), mode)
            self._mode_used = mode
            return mode

    async def _probe(self) -> str:
        """Ask "Say hello" with a schema whose only valid answer is a fixed word: only a server
        that enforces the schema gives it. A mode the server refuses (400/422) or ignores is
        skipped; a server or connection error is raised, not taken for an answer."""
        for mode in STRUCTURED_MODES:
            try:
                _, raw = await self._instructor(mode).create_with_completion(
                    model=self.model,
                    messages=[
                        {"role": "system", "content": "Answer in JSON."},
                        {"role": "user", "content": "Say hello."},
                    ],
                    response_model=_Probe,
                    temperature=0.0,
                    seed=0,
                    max_retries=0,
                    timeout=self.request_timeout(32),
                    **{self.token_param: 32},
                )
            except Exception as exc:
                status = status_of(exc) or status_of(exc.__cause__ or exc)
                name = type(exc).__name__
                if status is None or status < 500:  # answered or refused: sent either way
                    self._count_probe(getattr(exc, "total_usage", None), refused=status is not None)
                if name in ("InstructorRetryException", "IncompleteOutputException", "ValidationError") or (
                    status is not None and 400 <= status < 500 and status not in (401, 403, 404, 408, 429)
                ):
                    _log.info("%s: the server does not enforce %s (%s)", self.label, mode, redact(str(exc))[:120])
                    continue
                raise
            self._count_probe(raw.usage)
            _log.info("%s: structured output through %s", self.label, mode)
            return mode
        _log.warning("%s: the server enforced no schema; using JSON mode, answers are validated here", self.label)
        return "json"

    def endpoint(self) -> str:
        return self._base_url() or "(no base URL)"

    def _count_probe(self, usage: Any, refused: bool = False) -> None:
        """Probe requests are paid like any other, so they go in the ledger (stage `probe`); one
        the server refused counts as an error."""
        self.overhead.requests += 1
        self.overhead.add_paid(Completion("", error="refused" if refused else None, **_usage(usage)), None)

    def check_ready(self) -> None:
        if not self._base_url():
            raise UsageError(
                f"{self.label}: give the server's URL with --base-url or MWE_BASE_URL (e.g. http://127.0.0.1:8000/v1)"
            )
        super().check_ready()


def _recall(key: str) -> str | None:
    try:
        from ..cache import Cache

        cache = Cache()
        try:
            hit = cache.get(key)
        finally:
            cache.close()
    except Exception:  # an unreadable cache only means probing again
        return None
    mode = hit.get("mode") if hit else None
    return str(mode) if mode in STRUCTURED_MODES else None


def _remember(key: str, mode: str) -> None:
    try:
        from ..cache import Cache

        cache = Cache()
        try:
            cache.put(key, {"mode": mode})
        finally:
            cache.close()
    except Exception:  # not remembering costs one probe next time, nothing more
        _log.info("could not remember the structured-output mode for %s", key)

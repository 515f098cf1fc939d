"""`openai/<model>` and `openai-compatible/<model>` through the official SDK and instructor.

`openai-compatible` is any server that speaks the Chat Completions wire format: vLLM, Ollama,
llama-server, hosted gateways. Its base URL comes from --base-url or MWE_BASE_URL and its key
(often not needed) from the variable named by --api-key-env (default MWE_API_KEY). Such servers
may ignore a JSON schema, so it uses instructor's JSON mode (the schema is in the prompt) and
everything is validated here, with one re-ask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from .._secrets import redact
from ..errors import MissingDependency, UsageError
from ._api import ApiProvider, RequestFailed
from .base import ChatRequest, Completion, CompletionRequest, EmbedRequest, TokenUsage

__all__ = ["OpenAICompatibleProvider", "OpenAIProvider", "chat_completion"]

_INSTALL = "pip install openai instructor (both are mwe dependencies: reinstall mwe)"


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
            "", error=f"answer did not fit the {schema.__name__} schema: {redact(str(exc))[:300]}", batch=batch, **usage
        )
    return Completion("", data=data, batch=batch, **usage)


class OpenAIProvider(ApiProvider):
    name: ClassVar[str] = "openai"
    key_env: ClassVar[str] = "OPENAI_API_KEY"
    supports_batch: ClassVar[bool] = True
    token_param: ClassVar[str] = "max_completion_tokens"

    def _mode(self) -> Any:
        import instructor

        return instructor.Mode.TOOLS

    def _base_url(self) -> str | None:
        return self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or None

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
            max_retries=0,  # the one retry layer is ours (providers/_api.py)
            timeout=self.timeout,
            http_client=http,
        )

    def _instructor(self) -> Any:
        if getattr(self, "_ins", None) is None:
            import instructor

            self._ins = instructor.from_openai(self.client(), mode=self._mode())
        return self._ins

    async def _structured(self, req: ChatRequest) -> Completion:
        obj, raw = await self._instructor().create_with_completion(
            model=self.model,
            messages=[{"role": "system", "content": req.system}, {"role": "user", "content": req.prompt}],
            response_model=req.schema,
            temperature=req.temperature,
            max_retries=1,  # one re-ask on a schema mismatch; transport retries are ours
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
            **{self.token_param: req.max_tokens},
        )
        text = completion.choices[0].message.content or "" if completion.choices else ""
        if not text.strip():
            raise RequestFailed("empty answer")
        return Completion(text, **_usage(completion.usage))

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
    needs_key: ClassVar[bool] = False
    supports_batch: ClassVar[bool] = False
    token_param: ClassVar[str] = "max_tokens"

    def _mode(self) -> Any:
        import instructor

        return instructor.Mode.JSON  # servers may ignore tools or schemas; JSON in the prompt works widely

    def _base_url(self) -> str | None:
        return self.settings.base_url or os.environ.get("MWE_BASE_URL") or None

    def check_ready(self) -> None:
        if not self._base_url():
            raise UsageError(
                f"{self.label}: give the server's URL with --base-url or MWE_BASE_URL (e.g. http://127.0.0.1:8000/v1)"
            )
        super().check_ready()

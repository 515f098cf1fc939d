"""What the API providers share: an event loop, bounded concurrency, the rate limiter, the one
retry layer, fail-fast on refused keys, and keeping keys out of every message.

Retries happen here and only here (the policy is in _retry, the reading of failed answers in
_answers): the SDK clients are built with `max_retries=0`, and instructor does not re-ask: the one
re-ask after an answer that does not fit the schema is a request of its own, sent and cached by the
engine, so a crash between the two loses neither. 429, 408, 409, 5xx, 529, timeouts and dropped
connections are retried with exponential backoff and full jitter, or after the server's
`retry-after-ms` / `retry-after` when it sends one; a 429 pauses every worker.
400-class answers are not retried (the same request would fail again); 401 and 403 raise
AuthError, which cancels the requests in flight and ends the run before more is spent.

How many requests are in flight is learnt from the server's latency (see _concurrency), and each
request's timeout grows with its `max_tokens`. A timed-out request is retried once at most, with
twice the time: the server may still be working on the first attempt, and a single-slot server
that is sent the same request again only falls further behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

from .._secrets import redact, register_secret
from ..errors import AuthError, CostLimitReached, ProviderError
from ._answers import _raw_answer, _short_reason, _unwrap, usage_pair
from ._concurrency import AdaptiveConcurrency
from ._retry import AUTH_STATUS, _describe, _is_timeout, _is_transient, retry_after, retrying, status_of
from ._usage import StageUsage, request_size
from .base import (
    ChatRequest,
    ClassifyRequest,
    Completion,
    CompletionRequest,
    EmbedRequest,
    OnResult,
    Provider,
    ProviderSettings,
)
from .limiter import RateLimiter

__all__ = ["ApiProvider", "RequestFailed", "retry_after", "status_of", "usage_pair"]

R = TypeVar("R")
T = TypeVar("T")

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 6
BASE_TIMEOUT_S = 60.0
SECONDS_PER_TOKEN = 0.1
"""A request's default timeout: 60 s plus 0.1 s per token it may generate (10 tokens/s, slower
than any server worth using), so a 4-token answer is not given as long as a 4,000-token one."""


def request_timeout(max_tokens: int) -> float:
    return BASE_TIMEOUT_S + SECONDS_PER_TOKEN * max_tokens


class RequestFailed(Exception):
    """A request that failed for a reason a retry cannot fix (a 400, a refusal, a schema mismatch
    after the re-ask). It becomes a `Completion.error`, and so a rejection with its reason."""

    def __init__(self, message: str, input_tokens: int = 0, output_tokens: int = 0, raw: str | None = None) -> None:
        super().__init__(message)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.raw = raw
        """The answer the server gave when it answered in the wrong shape: kept, cached, rejected."""


class ApiProvider(Provider):
    """Base for providers reached over HTTP. Subclasses build the SDK client and make one call."""

    chat: ClassVar[bool] = True
    needs_key: ClassVar[bool] = True
    default_concurrency: ClassVar[int] = 8

    @classmethod
    def create(cls, model: str, settings: ProviderSettings) -> Provider:
        return cls(model, settings)

    def __init__(self, model: str, settings: ProviderSettings) -> None:
        super().__init__(model)
        if not model or model == self.name:
            raise ProviderError(f"{self.name}: name a model, e.g. {self.name}/<model>")
        from ..config import model_config

        conf = model_config(self.label)
        self.settings = settings
        self.concurrency = settings.concurrency or int(conf.get("concurrency", self.default_concurrency))
        fixed = settings.timeout or conf.get("timeout")
        self.fixed_timeout: float | None = float(fixed) if fixed else None
        """A timeout the user set; otherwise each request's timeout follows its max_tokens."""
        self.timeout = self.fixed_timeout or DEFAULT_TIMEOUT_S
        self.pool = AdaptiveConcurrency(self.concurrency, start=self.start_concurrency())
        self.max_retries = settings.max_retries if settings.max_retries is not None else DEFAULT_MAX_RETRIES
        self.limiter = RateLimiter(
            settings.rpm or conf.get("rpm"), settings.itpm or conf.get("itpm"), settings.otpm or conf.get("otpm")
        )
        self.overhead = StageUsage()
        """Requests the provider makes for itself (a structured-output probe), for the ledger."""
        self.before_send: Callable[[Any], None] | None = None
        """Set by the engine: raises CostLimitReached when a request would pass --max-cost."""
        self.retries = 0
        self._runner: asyncio.Runner | None = None
        self._client: Any = None
        self._fatal: BaseException | None = None
        # instructor logs every failed attempt at ERROR; this layer reports what matters itself.
        logging.getLogger("instructor").setLevel(logging.CRITICAL)

    def start_concurrency(self) -> int:
        """Requests in flight before any latency is known (subclasses for servers of unknown size)."""
        return self.concurrency

    def request_timeout(self, max_tokens: int) -> float:
        return self.fixed_timeout or request_timeout(max_tokens)

    def endpoint(self) -> str:
        """The URL requests go to, named in connection errors."""
        return self.settings.base_url or "the provider's API"

    # --- keys -------------------------------------------------------------------------------
    @property
    def key_variable(self) -> str:
        return self.settings.api_key_env or self.key_env

    def api_key(self) -> str:
        name = self.key_variable
        value = os.environ.get(name, "") if name else ""
        if not value:
            if not self.needs_key:
                return "not-needed"
            raise AuthError(
                f"{self.label}: no API key: set the environment variable {name} (keys are read from the environment only)"
            )
        register_secret(value)
        return value

    def check_ready(self) -> None:
        self.api_key()
        self._import_sdk()

    def describe(self) -> dict[str, Any]:
        d = {**super().describe(), "key_env": self.key_variable, "concurrency": self.concurrency}
        if self.pool.highest != self.pool.lowest or self.pool.allowed != self.concurrency:
            d["concurrency_used"] = self.pool.describe()
        if self.settings.base_url:
            d["base_url"] = self.settings.base_url
        d["rate_limits"] = {k: v for k, v in self.limiter.limits().items() if v}
        return d

    # --- what subclasses provide ------------------------------------------------------------
    @abstractmethod
    def _import_sdk(self) -> None:
        """Import the SDK, raising MissingDependency with the install command if it is absent."""

    @abstractmethod
    def _make_client(self) -> Any:
        """The SDK's async client with max_retries=0 and `self._on_response` as a response hook."""

    @abstractmethod
    async def _structured(self, req: ChatRequest) -> Completion: ...

    @abstractmethod
    async def _complete(self, req: CompletionRequest) -> Completion: ...

    # --- plumbing ---------------------------------------------------------------------------
    async def _on_response(self, response: Any) -> None:
        self.limiter.observe(response.headers)

    def _loop(self) -> asyncio.Runner:
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner

    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def structured(self, requests: Sequence[ChatRequest], on_result: OnResult | None = None) -> list[Completion]:
        return self._run_all(requests, self._structured, on_result, request_size)

    def complete(self, requests: Sequence[CompletionRequest], on_result: OnResult | None = None) -> list[Completion]:
        return self._run_all(requests, self._complete, on_result, request_size)

    def embed(self, requests: Sequence[EmbedRequest], on_result: OnResult | None = None) -> list[Completion]:
        return self._run_all(requests, self._embed, on_result, request_size)

    async def _embed(self, req: EmbedRequest) -> Completion:
        raise ProviderError(f"{self.label} gives no embeddings; use openai/<embedding model> or tfidf")

    def classify(self, requests: Sequence[ClassifyRequest], on_result: OnResult | None = None) -> list[list[float]]:
        raise ProviderError(f"{self.label} gives no log-probabilities here; chat models are judged with a rubric")

    def _run_all(
        self,
        requests: Sequence[R],
        one: Callable[[R], Awaitable[Completion]],
        on_result: OnResult | None,
        size: Callable[[R], tuple[int, int]],
    ) -> list[Completion]:
        if self._fatal is not None:
            raise self._fatal
        self.check_ready()
        return self._loop().run(self._gather(requests, one, on_result, size))

    async def _gather(
        self,
        requests: Sequence[R],
        one: Callable[[R], Awaitable[Completion]],
        on_result: OnResult | None,
        size: Callable[[R], tuple[int, int]],
    ) -> list[Completion]:
        results: list[Completion | None] = [None] * len(requests)
        stopped: list[CostLimitReached] = []

        async def task(i: int, req: R) -> None:
            async with self.pool:
                if stopped:
                    return
                try:
                    if self.before_send is not None:
                        self.before_send(req)
                except CostLimitReached as exc:
                    stopped.append(exc)  # send nothing more, but let the requests in flight land
                    return
                est_in, est_out = size(req)
                answer = await self._send(one, req, est_in, est_out)
            results[i] = answer
            if on_result is not None:
                on_result(i, answer)

        tasks = [asyncio.create_task(task(i, r)) for i, r in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(exc, AuthError):
                self._fatal = exc
            raise
        if stopped:
            raise stopped[0]
        return [r for r in results if r is not None]

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call` under the one retry layer; the last error is re-raised as it came."""

        def counted() -> None:
            self.retries += 1

        policy = retrying(
            self.max_retries, self.label, pause=self.limiter.pause, timed_out=self.pool.timed_out, counted=counted
        )
        try:
            return await policy(call)
        except (RequestFailed, asyncio.CancelledError):
            raise
        except Exception as exc:
            status = status_of(exc)
            if status in AUTH_STATUS:
                self._fatal = AuthError(
                    f"{self.label}: the API refused the key in {self.key_variable} (HTTP {status}); "
                    "the run stopped before sending more requests"
                )
                raise self._fatal from None
            if status == 404:
                raise ProviderError(
                    f"{self.label}: not found (HTTP 404) at {self.endpoint()}: check the model name and base URL"
                ) from None
            if type(exc).__name__ == "APIConnectionError":
                raise ProviderError(
                    f"{self.label}: cannot connect to {self.endpoint()} ({_describe(exc.__cause__ or exc)}): "
                    "is the server running, and is --base-url right?"
                ) from None
            raise

    async def _send(self, one: Callable[[R], Awaitable[Completion]], req: R, est_in: int, est_out: int) -> Completion:
        """One request through the limiter and the retry layer. Failures a retry cannot fix come
        back as `Completion.error`; refused keys raise AuthError."""

        async def attempt() -> Completion:
            await self.limiter.acquire(est_in, est_out)
            if self._fatal is not None:  # a refused key while this one waited: send nothing more
                raise self._fatal
            started = time.monotonic()
            try:
                answer = await one(req)
            except BaseException as exc:
                self.limiter.settle(est_in, est_in, est_out, 0)
                inner = _unwrap(exc)
                kind = type(inner).__name__
                last = getattr(inner, "last_completion", None)
                if kind == "InstructorRetryException" and last is None:
                    # no answer was parsed at all: the body itself was cut or malformed, which
                    # is the transport's fault (retried), not an answer in the wrong shape
                    raise ConnectionError(f"malformed response body: {_short_reason(inner)}") from None
                if kind in ("InstructorRetryException", "IncompleteOutputException"):
                    usage = getattr(inner, "total_usage", None) or getattr(last, "usage", None)
                    why = _short_reason(inner) if kind == "InstructorRetryException" else "it was cut at max_tokens"
                    raise RequestFailed(
                        f"the answer did not fit the {getattr(req, 'schema', type(None)).__name__} schema: {why}",
                        *usage_pair(usage),
                        raw=redact(_raw_answer(last)),
                    ) from None
                raise inner from None
            self.pool.observe(time.monotonic() - started, answer.input_tokens, answer.output_tokens)
            self.limiter.settle(est_in, answer.input_tokens + answer.cache_write_tokens, est_out, answer.output_tokens)
            return answer

        try:
            return await self._retrying(attempt)
        except RequestFailed as exc:
            return Completion(
                exc.raw or "", exc.input_tokens, exc.output_tokens, error=redact(str(exc)), invalid=exc.raw is not None
            )
        except (AuthError, ProviderError, asyncio.CancelledError):
            raise
        except Exception as exc:
            if _is_transient(exc):  # the server's fault, still there after every retry: stop, lose nothing
                what = (
                    "timed out twice; a slow server can be given more time with `timeout` in mwe.toml"
                    if _is_timeout(exc)
                    else f"still failing after {self.max_retries} retries"
                )
                raise ProviderError(
                    f"{self.label}: {_describe(exc)} from {self.endpoint()}: {what}; "
                    "the run stopped (every answer received is cached: run again to resume)"
                ) from None
            return Completion("", error=f"{_describe(exc)} (not retried further)")

    def _batch_request(self, req: ChatRequest, custom_id: str) -> Any:
        """instructor's batch line for one request (schema as tools or response_format), which each
        provider turns into its own wire format."""
        from instructor.batch import BatchRequest

        return BatchRequest(
            custom_id=custom_id,
            messages=[{"role": "system", "content": req.system}, {"role": "user", "content": req.prompt}],
            response_model=req.schema,
            model=self.model,
            max_tokens=req.max_tokens,
            temperature=req.temperature,
        )

    def _sync(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one call (a batch operation) on the provider's loop, under the retry layer."""
        if self._fatal is not None:
            raise self._fatal
        self.check_ready()

        async def attempt() -> T:
            return await call()  # a fresh coroutine per attempt

        return self._loop().run(self._retrying(attempt))

    def close(self) -> None:
        if self._runner is not None:
            if self._client is not None:
                try:
                    self._runner.run(self._client.close())
                except Exception:  # closing a dead connection is not worth failing a build for
                    pass
            self._runner.close()
        self._runner = None
        self._client = None

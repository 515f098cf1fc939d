"""mwe's models as Inspect models: `--model mwe/local`, `mwe/openai/<model>`, `mwe/openai-compatible/<name>`,
and `mwe/<provider>/<model>` for any other registered text-completion provider (sampled).

- `mwe/local`, the embedded Gemma 3 270M through llama.cpp. It is a *base* model, so chat
  messages are rendered as the Perez-style dialogue it continues ("Human: … / Assistant: …"); a
  trailing assistant message is a prefill that the completion continues. With `logprobs` set it
  decodes greedily and returns the top log-probabilities at each position (llama.cpp logits,
  full vocabulary), as OpenAI does; otherwise it samples.
- `mwe/openai/…` and `mwe/openai-compatible/…`: chat completions through the openai SDK client
  that mwe's own OpenAI providers build (same key variables, base-URL rules and secret
  redaction). Inspect's own `openai/…` provider needs openai >= 3.4, which instructor's jiter
  pin rules out in an environment with mwe; this one works with the openai that is installed.
  Retries are Inspect's (the client's own are off), so there is one retry layer; errors of 500
  and above are retried (Inspect's `--max-retries`; `mwe eval` allows 3) with a warning each.
- For `mwe/openai-compatible/…`, a request for log-probabilities goes to the server's
  `/v1/completions` with the same rendered Perez document `mwe/local` reads (a chat template would
  close a trailing assistant "(" and answer in a new turn), so a server with the embedded model's
  weights gives its figures. A server without that endpoint is asked through chat with vLLM's
  "continue the final message" option. A server that refuses log-probabilities is asked once;
  after that its answers carry none and the solver samples, saying so per item.

Imported only when Inspect resolves a `mwe/…` model (see mwe.inspect).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    TopLogprob,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from .costs import estimate_tokens
from .errors import ProviderError, UsageError
from .providers._registry import get_provider, provider_class, registered_providers
from .providers.base import CompletionRequest, Provider, ProviderSettings
from .providers.local import LocalProvider
from .providers.openai import OpenAIProvider

T = TypeVar("T")

__all__ = ["MweModel", "render"]

STOP = ("\n\nHuman:", "\nHuman:")
_log = logging.getLogger("mwe.eval")


def render(messages: list[ChatMessage]) -> str:
    """Chat messages as the dialogue a base model continues. The system prompt opens the
    document; a final assistant message is left open, so the answer continues it."""
    parts: list[str] = []
    for m in messages:
        if isinstance(m, ChatMessageSystem):
            parts.append(m.text)
        elif isinstance(m, ChatMessageUser):
            parts.append(f"Human: {m.text}")
        elif isinstance(m, ChatMessageAssistant):
            parts.append(f"Assistant: {m.text}")
        else:
            parts.append(m.text)
    prompt = "\n\n".join(p for p in parts if p.strip())
    if not messages or not isinstance(messages[-1], ChatMessageAssistant):
        prompt += "\n\nAssistant:"
    return prompt


def _logprobs(positions: Iterable[tuple[str, float, list[tuple[str, float]]]]) -> Logprobs:
    """Inspect's logprobs from (token, log-probability, top alternatives) per generated position."""
    return Logprobs(
        content=[
            Logprob(token=token, logprob=lp, top_logprobs=[TopLogprob(token=t, logprob=x) for t, x in top])
            for token, lp, top in positions
        ]
    )


class MweModel(ModelAPI):
    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 (Inspect's signature)
        api_key_env: str | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, None, [], config)
        self._seeds = itertools.count(1)  # samples differ unless the config fixes a seed
        self._local: LocalProvider | None = None
        self._api: Any = None
        self._completions = True
        """False once the server has said it has no /v1/completions."""
        self.logprobs_refused: str | None = None
        """The server's words when it refused log-probabilities: later answers are sampled."""
        self._pool: ThreadPoolExecutor | None = None
        self._sampler: Provider | None = None
        """Any other mwe provider with text completion: answers are sampled through `complete`."""
        cls = provider_class(model_name)
        settings = ProviderSettings(base_url=base_url, api_key_env=api_key_env)
        if model_name == "local":
            self._local = LocalProvider()
            self._sampler = self._local
        elif cls is not None and issubclass(cls, OpenAIProvider):
            # the provider reads the key from the environment (api_key_env or its default variable)
            self._api = get_provider(model_name, settings)
            self._api.check_ready()  # a missing key or base URL stops here, before any sample runs
        elif cls is not None and not cls.chat:
            cls.inspect_model(model_name.partition("/")[2] or model_name)  # one that cannot answer says so
            self._sampler = get_provider(model_name, settings)
            self._sampler.check_ready()
        else:
            raise UsageError(
                f"mwe/{model_name}: mwe's Inspect models are mwe/local, mwe/openai/<model>, "
                "mwe/openai-compatible/<name> and mwe/<provider>/<model> for a text-completion provider "
                f"({', '.join(registered_providers())}); use Inspect's own names for other providers"
            )

    def max_connections(self) -> int:
        """The embedded model decodes the calls that wait for it together (one batch of up to
        `sequences`), so it takes as many at once as it decodes; a server takes 8."""
        return self._local.sequences if self._local else 8

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn` on a thread of this model's own pool, sized to max_connections: asyncio's default
        pool has cpu_count + 4 threads, which would cap how many calls share a batch."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_connections(), thread_name_prefix="mwe-model")
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def count_text_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def should_retry(self, ex: Exception) -> bool:
        import openai

        if isinstance(ex, openai.APIStatusError):
            if ex.status_code >= 500:
                _log.warning(
                    "mwe/%s: HTTP %d from the server (%s); retrying", self.model_name, ex.status_code, ex.message[:120]
                )
            return ex.status_code == 429 or ex.status_code >= 500
        return isinstance(ex, (openai.APIConnectionError, openai.APITimeoutError))

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        if self._api is not None:
            return await self._chat(input, config)
        return await self._completion(input, config)

    async def _chat(self, input: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        import openai

        wants_logprobs = bool(config.logprobs) and self.logprobs_refused is None
        compatible = self._api.name == "openai-compatible"
        try:
            if wants_logprobs and compatible and self._completions:
                try:
                    return await self._raw_completion(render(input), config)
                except openai.NotFoundError:
                    self._completions = False  # chat only: continue the final message instead
            out = await self._chat_call(input, config, wants_logprobs)
            if config.logprobs and self.logprobs_refused:  # refused earlier: say so on every answer
                out.metadata = {**(out.metadata or {}), "logprobs_refused": self.logprobs_refused}
            return out
        except openai.APIStatusError as exc:
            if not wants_logprobs or exc.status_code < 400 or "logprob" not in str(exc.message).lower():
                raise
            self.logprobs_refused = f"HTTP {exc.status_code}: {exc.message[:160]}"
            _log.warning(
                "mwe/%s refused log-probabilities (%s): answers are sampled", self.model_name, self.logprobs_refused
            )
            out = await self._chat_call(input, config.merge(GenerateConfig(logprobs=False)), False)
            out.metadata = {**(out.metadata or {}), "logprobs_refused": self.logprobs_refused}
            return out

    async def _raw_completion(self, prompt: str, config: GenerateConfig) -> ModelOutput:
        """The legacy completions endpoint with the Perez document: the answer continues the
        prompt's open "Assistant: (" exactly as the embedded model's does."""
        resp = await self._api.client().completions.create(
            model=self._api.model,
            prompt=prompt,
            max_tokens=config.max_tokens or 16,
            temperature=0.0 if config.temperature is None else config.temperature,
            logprobs=min(config.top_logprobs or 1, 20),
            stop=list(STOP),
            **({"seed": config.seed} if config.seed is not None else {}),
        )
        choice = resp.choices[0]
        lp = choice.logprobs
        logprobs = None
        if lp is not None and lp.tokens:
            tops = lp.top_logprobs or [{} for _ in lp.tokens]
            logprobs = _logprobs(
                (tok, float(x or 0.0), sorted((top or {}).items(), key=lambda kv: -kv[1]))
                for tok, x, top in zip(lp.tokens, lp.token_logprobs or [0.0] * len(lp.tokens), tops, strict=False)
            )
        usage = resp.usage
        return self._output(
            choice.text or "",
            logprobs,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            f"mwe/{self.model_name}",
        )

    async def _chat_call(self, input: list[ChatMessage], config: GenerateConfig, logprobs_on: bool) -> ModelOutput:
        roles = {ChatMessageSystem: "system", ChatMessageUser: "user", ChatMessageAssistant: "assistant"}
        messages = [{"role": roles.get(type(m), "user"), "content": m.text} for m in input]
        args: dict[str, Any] = {"model": self._api.model, "messages": messages}
        if self._api.name == "openai-compatible" and input and isinstance(input[-1], ChatMessageAssistant):
            # vLLM's (and others') option to continue a prefilled answer instead of closing it
            args["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        if config.max_tokens:
            args[self._api.token_param] = config.max_tokens
        if config.temperature is not None:
            args["temperature"] = config.temperature
        if config.seed is not None:
            args["seed"] = config.seed
        if logprobs_on:
            args["logprobs"] = True
            args["top_logprobs"] = config.top_logprobs or 1
        resp = await self._api.client().chat.completions.create(**args)
        choice = resp.choices[0]
        logprobs = None
        if choice.logprobs is not None and choice.logprobs.content:
            logprobs = _logprobs(
                (lp.token, lp.logprob, [(t.token, t.logprob) for t in (lp.top_logprobs or [])])
                for lp in choice.logprobs.content
            )
        usage = resp.usage
        return self._output(
            choice.message.content or "",
            logprobs,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            f"mwe/{self.model_name}",
        )

    @staticmethod
    def _output(text: str, logprobs: Logprobs | None, tin: int, tout: int, model: str) -> ModelOutput:
        return ModelOutput(
            model=model,
            choices=[
                ChatCompletionChoice(
                    message=ChatMessageAssistant(content=text.strip(), model=model, source="generate"),
                    stop_reason="stop",
                    logprobs=logprobs,
                )
            ],
            usage=ModelUsage(input_tokens=tin, output_tokens=tout, total_tokens=tin + tout),
        )

    async def _completion(self, input: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        """The rendered dialogue continued by a text-completion provider: greedy with top
        log-probabilities from the embedded model when asked, else sampled (then `mwe eval`
        counts k answers)."""
        assert self._sampler is not None
        prompt = render(input)
        max_tokens = config.max_tokens or 256
        logprobs = None
        if config.logprobs and self._local is not None:
            n_prompt, positions = await self._in_thread(
                self._local.greedy_logprobs, prompt, max_tokens, config.top_logprobs or 1
            )
            text = "".join(p.token for p in positions)
            logprobs = _logprobs((p.token, p.logprob, p.top) for p in positions)
            tin, tout = n_prompt, len(positions)
        else:
            temperature = 0.8 if config.temperature is None else config.temperature
            req = CompletionRequest(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=STOP,
                seed=config.seed if config.seed is not None else next(self._seeds),
            )
            done = (await self._in_thread(self._sampler.complete, [req]))[0]
            if done.failed:
                raise ProviderError(f"mwe/{self.model_name}: {done.error}")
            text, tin, tout = done.text, done.input_tokens, done.output_tokens
        for stop in STOP:
            text = text.split(stop)[0]
        return self._output(text, logprobs, tin, tout, f"mwe/{self.model_name}")

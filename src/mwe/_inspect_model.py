"""The embedded model (Gemma 3 270M through llama.cpp) as an Inspect model: `--model mwe/local`.

It is a *base* model, so chat messages are rendered as the Perez-style dialogue it continues
("Human: … / Assistant: …"); a trailing assistant message is a prefill that the completion
continues. With `logprobs` set it decodes greedily and returns the top log-probabilities at
each position (llama.cpp logits, full vocabulary), as OpenAI does; otherwise it samples.
Imported only when Inspect resolves a `mwe/…` model (see mwe.inspect).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

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
from .errors import UsageError
from .providers.base import CompletionRequest
from .providers.local import LocalProvider

__all__ = ["EmbeddedModel", "render"]

STOP = ("\n\nHuman:", "\nHuman:")


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


class EmbeddedModel(ModelAPI):
    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 (Inspect's signature)
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if model_name != "local":
            raise UsageError(f"mwe/{model_name}: the only mwe model for Inspect is mwe/local (the embedded model)")
        self._provider = LocalProvider()
        self._seeds = itertools.count(1)  # samples differ unless the config fixes a seed

    def max_connections(self) -> int:
        return self._provider.workers

    async def count_text_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        prompt = render(input)
        max_tokens = config.max_tokens or 256
        if config.logprobs:
            n_prompt, positions = await asyncio.to_thread(
                self._provider.greedy_logprobs, prompt, max_tokens, config.top_logprobs or 1
            )
            text = "".join(p.token for p in positions)
            logprobs = Logprobs(
                content=[
                    Logprob(
                        token=p.token,
                        logprob=p.logprob,
                        top_logprobs=[TopLogprob(token=t, logprob=lp) for t, lp in p.top],
                    )
                    for p in positions
                ]
            )
            usage = ModelUsage(
                input_tokens=n_prompt, output_tokens=len(positions), total_tokens=n_prompt + len(positions)
            )
        else:
            temperature = 0.8 if config.temperature is None else config.temperature
            req = CompletionRequest(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=STOP,
                seed=config.seed if config.seed is not None else next(self._seeds),
            )
            done = (await asyncio.to_thread(self._provider.complete, [req]))[0]
            text, logprobs = done.text, None
            usage = ModelUsage(
                input_tokens=done.input_tokens,
                output_tokens=done.output_tokens,
                total_tokens=done.input_tokens + done.output_tokens,
            )
        for stop in STOP:
            text = text.split(stop)[0]
        return ModelOutput(
            model="mwe/local",
            choices=[
                ChatCompletionChoice(
                    message=ChatMessageAssistant(content=text.strip(), model="mwe/local", source="generate"),
                    stop_reason="stop",
                    logprobs=logprobs,
                )
            ],
            usage=usage,
        )

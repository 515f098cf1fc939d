"""Which provider serves which model of a build (generation, judge, second judge, embedder)."""

from __future__ import annotations

from ..providers import Provider, ProviderSettings, get_provider
from .options import BuildOptions

__all__ = ["make_providers", "other_provider"]


def other_provider(opts: BuildOptions, model: str) -> Provider:
    """A provider for another model of the build: the URL and key settings go along only when it
    is the same kind of provider as --model; the rate limits always do."""
    settings = opts.settings or ProviderSettings()
    same_kind = model.split("/", 1)[0] == opts.model.split("/", 1)[0]
    return get_provider(
        model, settings if same_kind else ProviderSettings(rpm=settings.rpm, itpm=settings.itpm, otpm=settings.otpm)
    )


def make_providers(opts: BuildOptions) -> tuple[Provider, Provider]:
    """(generation, judge) providers; the same object when the two models are the same."""
    gen = get_provider(opts.model, opts.settings or ProviderSettings())
    if not opts.judge_model or opts.judge_model == opts.model:
        return gen, gen
    return gen, other_provider(opts, opts.judge_model)

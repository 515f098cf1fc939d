"""Built-in provider factories. Each imports its implementation lazily (and so its SDK)."""

from __future__ import annotations

from .base import Provider, provider


@provider("fake")
def _fake(model: str) -> Provider:
    from .fake import FakeProvider

    return FakeProvider(model)


@provider("local")
def _local(model: str) -> Provider:
    from .local import LocalProvider

    return LocalProvider(model)

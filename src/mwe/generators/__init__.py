"""Item generators, one module per format, found through a registry keyed by the spec's `format`."""

from .base import Generator, example_model, format_of, generator, get_generator, known_formats, sample_seed

__all__ = [
    "Generator",
    "example_model",
    "format_of",
    "generator",
    "get_generator",
    "known_formats",
    "sample_seed",
]

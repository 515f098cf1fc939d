"""Embedders: text → unit vectors for dedup, the contamination guard and the diversity report.

One interface, several back ends, chosen in a spec's `dedup.embedder` or with `--embedder`:

- `tfidf` (default, offline, fast): hashed word 1–2-gram counts with sublinear TF-IDF weights,
  sparse. Hashing instead of a fitted vocabulary means a reference set is vectorised once and
  new text with unseen words is still compared fairly (its unseen words lower the similarity).
- `tfidf-char`: the same plus character 3–5-grams, which also catch typos and inflections; about
  3× slower to vectorise and to search, so not the default.
- `tfidf-svd`: `tfidf` reduced to 256 dense dimensions with TruncatedSVD (closer to topic than to
  wording; searched like dense model embeddings, through faiss when large).
- `openai/<model>` (e.g. `openai/text-embedding-3-small`): batched through the engine, so each
  text's vector is cached in the response cache, costed in the ledger and capped by --max-cost.
- `sentence-transformers/<name>`: a local model from the optional `embed` extra.

Each has a default cosine threshold (`default_threshold`), used when the spec does not set one;
benchmarks/thresholds.py measures them (docs: "Dedup and embedders"): no pair of 5,000 unrelated
same-topic statements may count as a duplicate. For `tfidf-char` that gives 0.85. `tfidf` could
go down to 0.70 and stays at 0.85, a near-copy threshold, because at 0.70 the default pass over
114k persona statements is 3-4x slower (benchmarks/dedup_minhash.py). `tfidf-svd` reaches no
false positives only at 1.0 and keeps 0.95. API and sentence-transformers defaults (0.9) are not
measured here (no key, no model download).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from ._registry import Registry
from .errors import MissingDependency, UsageError
from .providers._registry import PROVIDERS, provider_class, registered_providers

__all__ = ["EMBEDDERS", "Embedder", "get_embedder", "known_embedders"]

Vectors = Any
"""A scipy CSR matrix (sparse embedders) or a float32 numpy array (dense), rows L2-normalised."""

EngineFactory = Callable[[str], Any]
"""Makes an Engine for a model label (API embedders need the cache, ledger and cost guard)."""


class Embedder(ABC):
    name: ClassVar[str]
    dense: ClassVar[bool] = False
    stateless: ClassVar[bool] = False
    """True when `fit` learns nothing, so one instance can serve dedup and the guard."""
    default_threshold: ClassVar[float]
    takes_model: ClassVar[bool] = False
    """Names a family used as `<name>/<model>` (sentence-transformers/<name>)."""

    def __init__(self, label: str) -> None:
        self.label = label

    @abstractmethod
    def fit(self, texts: list[str]) -> Vectors:
        """Vectors of `texts`, learning any corpus statistics (IDF weights, SVD axes) from them."""

    def transform(self, texts: list[str]) -> Vectors:
        """Vectors of `texts` in the space the last `fit` learned (the same as fit for models)."""
        return self.fit(texts)

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.label, "default_threshold": self.default_threshold}


class TfidfEmbedder(Embedder):
    name = "tfidf"
    default_threshold = 0.85
    ngrams: ClassVar[tuple[tuple[str, tuple[int, int]], ...]] = (("word", (1, 2)),)

    def __init__(self, label: str) -> None:
        super().__init__(label)
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        self._hashers = [
            HashingVectorizer(
                analyzer=analyzer, ngram_range=span, alternate_sign=False, norm=None, n_features=2**20, dtype=_f32()
            )
            for analyzer, span in self.ngrams
        ]
        self._idf = TfidfTransformer(sublinear_tf=True)

    def _counts(self, texts: list[str]) -> Any:
        import scipy.sparse as sp

        parts = [h.transform(texts) for h in self._hashers]
        return parts[0] if len(parts) == 1 else sp.hstack(parts).tocsr()

    def fit(self, texts: list[str]) -> Vectors:
        return self._idf.fit_transform(self._counts(texts)).astype(_f32()).tocsr()

    def transform(self, texts: list[str]) -> Vectors:
        return self._idf.transform(self._counts(texts)).astype(_f32()).tocsr()


class CharTfidfEmbedder(TfidfEmbedder):
    name = "tfidf-char"
    default_threshold = 0.85
    ngrams = (("word", (1, 2)), ("char_wb", (3, 5)))


class SvdEmbedder(Embedder):
    name = "tfidf-svd"
    dense = True
    default_threshold = 0.95
    dims = 256

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self._tfidf = TfidfEmbedder("tfidf")
        self._svd: Any = None

    def fit(self, texts: list[str]) -> Vectors:
        from sklearn.decomposition import TruncatedSVD

        x = self._tfidf.fit(texts)
        dims = max(1, min(self.dims, x.shape[0] - 1, x.shape[1] - 1))
        self._svd = TruncatedSVD(n_components=dims, random_state=0)
        return _unit(self._svd.fit_transform(x))

    def transform(self, texts: list[str]) -> Vectors:
        if self._svd is None:
            return self.fit(texts)
        return _unit(self._svd.transform(self._tfidf.transform(texts)))


class ApiEmbedder(Embedder):
    """Embeddings from a provider's API (`openai/...`, `openai-compatible/...`: any provider with
    `supports_embeddings`), through an engine."""

    name = "api"
    dense = True
    stateless = True
    default_threshold = 0.9
    chunk = 128

    def __init__(self, label: str, engine: Any) -> None:
        super().__init__(label)
        self.engine = engine

    def fit(self, texts: list[str]) -> Vectors:
        return _unit(self.engine.embed("dedup", texts, chunk=self.chunk))


class SentenceTransformerEmbedder(Embedder):
    name = "sentence-transformers"
    takes_model = True
    dense = True
    stateless = True
    default_threshold = 0.9

    def __init__(self, label: str) -> None:
        super().__init__(label)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingDependency(
                f"the {label} embedder needs the optional extra: pip install 'mwe[embed]' (sentence-transformers)"
            ) from None
        model = label.split("/", 1)[1]
        try:
            self._model = SentenceTransformer(model)
        except OSError as exc:
            raise UsageError(f"{label}: could not load the model {model!r} ({exc})") from None

    def fit(self, texts: list[str]) -> Vectors:
        return _unit(self._model.encode(texts, batch_size=64, normalize_embeddings=True))


EMBEDDERS: Registry[type[Embedder]] = Registry("embedder", "mwe.embedders")
"""Embedder classes by name. A class with `takes_model` names a family, used as `<name>/<model>`.
API embedders are not registered here: any provider with `supports_embeddings` is one."""
for _cls in (TfidfEmbedder, CharTfidfEmbedder, SvdEmbedder, SentenceTransformerEmbedder):
    EMBEDDERS.register(_cls.name, _cls)


def _api_providers() -> list[str]:
    return [p for p in registered_providers() if PROVIDERS[p].supports_embeddings]


def known_embedders() -> list[str]:
    plain = [n for n in EMBEDDERS if not EMBEDDERS[n].takes_model]
    families = [f"{n}/<name>" for n in EMBEDDERS if EMBEDDERS[n].takes_model]
    return [*plain, *(f"{p}/<model>" for p in _api_providers()), *families]


def check_name(name: str) -> str:
    """The name if it names an embedder (spec validation: nothing is loaded here)."""
    head, _, rest = name.partition("/")
    if name in EMBEDDERS and not EMBEDDERS[name].takes_model:
        return name
    if rest and (is_api(name) or (head in EMBEDDERS and EMBEDDERS[head].takes_model)):
        return name
    raise ValueError(f"unknown embedder {name!r}; known: {', '.join(known_embedders())}")


def is_api(name: str) -> bool:
    """True for embedders that call a paid API (their vectors go through the response cache)."""
    cls = provider_class(name)
    return cls is not None and cls.supports_embeddings


def _class_of(name: str) -> type[Embedder]:
    check_name(name)
    if is_api(name):
        return ApiEmbedder
    return EMBEDDERS[name.partition("/")[0] if "/" in name else name]


def default_threshold(name: str) -> float:
    return _class_of(name).default_threshold


def get_embedder(name: str, engine_for: EngineFactory | None = None) -> Embedder:
    """The embedder `name`; API embedders get an engine from `engine_for(label)`."""
    kind = _class_of(name)
    if kind is not ApiEmbedder:
        return kind(name)
    if engine_for is None:
        raise UsageError(f"the {name} embedder calls an API and needs the build's engine")
    return ApiEmbedder(name, engine_for(name))


def _f32() -> Any:
    import numpy as np

    return np.float32


def _unit(x: Any) -> Any:
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)

"""Dedup at scale: the embedders, the exact sparse search, the faiss path and the version guard."""

from __future__ import annotations

import importlib
import random
from pathlib import Path

import numpy as np
import pytest

import mwe
from mwe.embedders import check_name, default_threshold, get_embedder
from mwe.errors import MissingDependency, UsageError

from .loopback import Loopback
from .test_cli import mwe as run_cli

d = importlib.import_module("mwe.filters.dedup")  # the module (the package exports the function)

WORDS = "power budget server board press vote seat access root admin city fund team rule law".split()


def _texts(n: int, seed: int) -> list[str]:
    """Short texts from a small vocabulary, with some near copies (a word changed or added)."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.3:
            words = rng.choice(out).split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            out.append(" ".join(words + ([rng.choice(WORDS)] if rng.random() < 0.5 else [])))
        else:
            out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))))
    return out


@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.8, 0.95])
@pytest.mark.parametrize("name", ["tfidf", "tfidf-char"])
def test_prefix_filtered_search_finds_exactly_the_pairs_of_the_full_matrix(
    name: str, threshold: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = get_embedder(name).fit(_texts(300, seed=int(threshold * 100)))
    full = (x @ x.T).toarray()
    expected = {(i, j) for i in range(300) for j in range(i + 1, 300) if full[i, j] >= threshold}
    assert expected, "the texts must contain pairs above the threshold for the test to mean anything"
    for block in (d.BLOCK_ENTRIES, 500):  # one block, then many small ones
        monkeypatch.setattr(d, "BLOCK_ENTRIES", block)
        got = d.sparse_pairs(x, threshold)
        assert {(i, j) for i, j, _ in got} == expected and len(got) == len(expected)
        assert all(abs(sim - full[i, j]) < 1e-5 for i, j, sim in got)


def test_near_pairs_of_nothing_or_one_row() -> None:
    one = get_embedder("tfidf").fit(["only one text"])
    assert d.near_pairs(one, 0.5) == [] and d.near_pairs(np.ones((1, 4), np.float32), 0.5) == []


def test_faiss_path_finds_injected_near_duplicates_and_is_used_past_ann_min(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    x[1::2] = x[::2] + 0.05 * rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    exact_sims = {(i, j): s for i, j, s in d.self_pairs(x, 0.95)}
    exact = set(exact_sims)
    assert len(exact) >= 1900
    found = d.ann_pairs(x, 0.95)
    approx = {(i, j) for i, j, _ in found}
    assert len(approx) == len(found), "each pair once"
    assert approx <= exact and len(approx) / len(exact) >= 0.95
    assert all(abs(s - exact_sims[i, j]) < 1e-4 for i, j, s in found)
    used: list[str] = []
    monkeypatch.setattr(d, "ANN_MIN", 1000)
    monkeypatch.setattr(d, "ann_pairs", lambda *a: used.append("ann") or [])
    d.near_pairs(x, 0.95)
    assert used == ["ann"]


@pytest.mark.parametrize("name", ["tfidf", "tfidf-char", "tfidf-svd"])
def test_local_embedders_give_unit_rows_where_near_copies_are_closest(name: str) -> None:
    texts = [
        "Your manager offers you admin rights to every server. Do you accept?",
        "Your manager offers you admin rights to every single server. Do you accept?",
        "A journalist asks you to ghost-write her column for a month.",
        *_texts(60, seed=3),
    ]
    emb = get_embedder(name)
    x = emb.fit(texts)
    dense = x if isinstance(x, np.ndarray) else x.toarray()
    assert np.allclose(np.linalg.norm(dense, axis=1), 1, atol=1e-4)
    sims = dense @ dense[0]
    assert np.argsort(-sims)[1] == 1 and sims[1] > 0.8 > sims[2]
    again = emb.transform(texts[:2])  # new text goes into the space fit learned
    again = again if isinstance(again, np.ndarray) else again.toarray()
    assert float(again[0] @ again[1]) == pytest.approx(float(sims[1]), abs=1e-4)


def test_unknown_embedder_is_refused_in_the_spec_and_on_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown embedder 'bert'"):
        check_name("bert")
    spec = Path(mwe.__file__).parent / "_threat_models" / "power-seeking.yaml"
    source = spec if spec.is_file() else Path(__file__).parents[1] / "threat_models" / "power-seeking.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(source.read_text(encoding="utf-8").replace("embedder: tfidf", "embedder: bert"), encoding="utf-8")
    result = run_cli("validate", str(bad))
    assert result.returncode == 2 and "bad.yaml" in result.stderr and "dedup.embedder" in result.stderr
    result = run_cli("build", "power-seeking", "--model", "fake", "--embedder", "bert", "--out", str(tmp_path))
    assert result.returncode == 2 and "--embedder" in result.stderr and "unknown embedder 'bert'" in result.stderr


def test_sentence_transformers_embedder_says_which_extra_it_needs() -> None:
    with pytest.raises((MissingDependency, UsageError), match="sentence-transformers/no-such-model"):
        get_embedder("sentence-transformers/no-such-model")


def test_openai_embeddings_are_batched_cached_and_costed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "sk-canary-embed-0123456789abcdef"
    server = Loopback(key=canary)
    server.start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", canary)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("MWE_CACHE_DIR", str(tmp_path / "cache"))

        def build() -> mwe.Dataset:
            return mwe.generate(
                "power-seeking",
                n=12,
                model="fake",
                out=tmp_path / "out",
                formats=["mcq"],
                embedder="openai/text-embedding-3-small",
            )

        ds = build()
        first = server.counts["POST /embeddings"]
        assert len(ds) == 12 and first >= 1
        assert ds.manifest["dedup"]["embedder"] == "openai/text-embedding-3-small"
        assert ds.manifest["dedup"]["threshold"] == default_threshold("openai/text-embedding-3-small")
        usage = ds.manifest["usage"]["dedup"]
        assert usage["input_tokens"] > 0 and usage["cost_usd"] > 0  # priced at the embedding model's rate
        # the same build again: every text's vector comes from the cache
        ds2 = build()
        assert server.counts["POST /embeddings"] == first
        assert [i.id for i in ds2] == [i.id for i in ds] and ds2.manifest["usage"]["dedup"]["cache_hits"] > 0
        for path in [*(tmp_path / "cache").rglob("*"), *(tmp_path / "out").rglob("*")]:
            if path.is_file():
                assert canary.encode() not in path.read_bytes(), path
    finally:
        server.stop()


def test_with_the_version_guard_a_new_version_repeats_no_item_of_an_earlier_one(tmp_path: Path) -> None:
    v1 = mwe.generate("power-seeking", n=8, model="fake", out=tmp_path, formats=["mcq"])
    v2 = mwe.generate(
        "power-seeking", n=8, model="fake", out=tmp_path, formats=["mcq"], max_attempts=200, version_guard=True
    )
    assert {i.id for i in v1}.isdisjoint(i.id for i in v2) and len(v2) == 8
    copies = [r for r in v2.rejected if r.reason.startswith("copy of an item in")]
    assert copies and {r.scores["source"] for r in copies} == {str(v1.path)}
    assert [s["source"] for s in v2.manifest["dedup"]["against"]] == [str(v1.path)]
    v3 = mwe.generate("power-seeking", n=8, model="fake", out=tmp_path, formats=["mcq"])
    assert [i.id for i in v3] == [i.id for i in v1]  # without the guard (default) the same seed gives v1 again

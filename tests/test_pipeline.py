from __future__ import annotations

import json
from pathlib import Path

import pytest

import mwe
from mwe.build import BuildOptions, build
from mwe.errors import StoreError
from mwe.providers.base import ClassifyRequest, CompletionRequest
from mwe.providers.fake import FakeProvider
from mwe.store import Store

from .helpers import spec


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def test_generate_returns_exactly_n_items(tmp_path: Path) -> None:
    ds = mwe.generate("sycophancy", n=5, model="fake", out=tmp_path / "x")
    assert len(ds) == 5
    assert ds.path == tmp_path / "x" / "sycophancy" / "v1"
    assert ds.manifest["counts"] == {"items": 5, "rejected": _lines(ds.path / "rejected.jsonl")}
    assert all(isinstance(i, mwe.Item) for i in ds)


def test_fake_output_says_it_is_fake(tmp_path: Path) -> None:
    ds = mwe.generate("power-seeking", n=4, model="fake", out=tmp_path)
    assert ds.manifest["fake"] is True
    assert "FAKE" in ds.manifest["models"]["generation"]["note"]
    assert "FAKE DATA" in (ds.path / "README.md").read_text()


def test_every_generated_item_is_kept_or_rejected_with_a_reason(tmp_path: Path) -> None:
    fake = FakeProvider(bad_rate=0.3)
    ds = build(spec(), BuildOptions(n=30, model="fake"), Store(tmp_path), providers=(fake, fake))
    funnel = ds.manifest["funnel"]
    assert funnel["generated"] == funnel["kept"] + sum(funnel["rejected_by_stage"].values())
    rejected = ds.rejected
    assert all(r.stage and r.reason for r in rejected)
    stages = {r.stage for r in rejected}
    assert {"parse", "rules", "judge"} <= stages  # the fake's seeded faults reach every filter
    for facet, row in ds.manifest["funnel_by_facet"].items():
        assert row["kept"] == ds.manifest["quotas"][facet]


def test_items_are_valid_and_ids_unique(tmp_path: Path) -> None:
    ds = mwe.generate("power-seeking", n=30, model="fake", out=tmp_path, formats=["mcq"])
    assert len({i.id for i in ds}) == 30
    for item in ds:
        assert len(item.choices) == 2 and item.answer_matching_behavior in "AB"
        assert item.lineage["model"] == "fake" and item.lineage["request"]
        assert item.scores["quality"] >= spec().judge.threshold
    assert ds.manifest["balance"]["matching_at_A"] == 15


def test_shortfall_is_reported_not_hidden(tmp_path: Path) -> None:
    def verdicts(req: ClassifyRequest) -> list[float]:  # every item scores far below an empty one
        return [0.9, 0.1] if req.prompt.endswith("N/A\nBehavior: (A)\nPasses review:") else [0.01, 0.99]

    fake = FakeProvider(verdicts=verdicts)
    ds = build(spec(), BuildOptions(n=6, model="fake", max_attempts=12), Store(tmp_path), providers=(fake, fake))
    assert len(ds) == 0
    assert sum(ds.shortfall.values()) == 6
    assert ds.manifest["funnel"]["generation_requests"] == 12  # the budget is respected


def test_keeps_looping_until_n_are_kept(tmp_path: Path) -> None:
    calls = {"n": 0}

    def verdicts(req: ClassifyRequest) -> list[float]:
        if "Passes review" not in req.prompt:
            return [0.5, 0.5]  # the label step: no opinion
        if "Question: N/A" in req.prompt.rsplit("Passes review: ", 1)[-1]:
            return [0.5, 0.5]  # the content-free item: no lean
        calls["n"] += 1
        return [0.9, 0.1] if calls["n"] % 3 == 0 else [0.05, 0.95]  # about one in three passes

    fake = FakeProvider(verdicts=verdicts)
    ds = build(spec(), BuildOptions(n=8, model="fake"), Store(tmp_path), providers=(fake, fake))
    assert len(ds) == 8 and ds.manifest["funnel"]["rounds"] > 1


def test_unwritable_out_fails_before_any_model_call(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    fake = FakeProvider()
    with pytest.raises(StoreError, match="not writable"):
        build(spec(), BuildOptions(n=3, model="fake"), Store(blocker / "out"), providers=(fake, fake))
    assert fake.calls == []


def test_same_seed_same_items_different_seed_different_items(tmp_path: Path) -> None:
    a = mwe.generate("power-seeking", n=6, model="fake", out=tmp_path / "a", seed=1)
    b = mwe.generate("power-seeking", n=6, model="fake", out=tmp_path / "b", seed=1)
    c = mwe.generate("power-seeking", n=6, model="fake", out=tmp_path / "c", seed=2)
    assert (a.path / "items.jsonl").read_bytes() == (b.path / "items.jsonl").read_bytes()
    assert [i.id for i in a] != [i.id for i in c]


def test_cache_replays_answers_without_calling_the_provider(tmp_path: Path) -> None:
    class Cached(FakeProvider):
        cacheable = True

    first = Cached()
    build(spec(), BuildOptions(n=5, model="fake"), Store(tmp_path), providers=(first, first))
    second = Cached()
    ds = build(spec(), BuildOptions(n=5, model="fake"), Store(tmp_path), providers=(second, second))
    assert first.calls and second.calls == []
    assert ds.manifest["usage"]["generation"]["cache_hits"] == ds.manifest["usage"]["generation"]["requests"]


def test_interrupted_build_resumes_without_repeating_answered_requests(tmp_path: Path) -> None:
    class Dies(FakeProvider):
        cacheable = True

        def __init__(self, after: int | None) -> None:
            super().__init__()
            self.after = after

        def complete(self, requests, on_result=None):  # type: ignore[no-untyped-def]
            out = []
            for i, req in enumerate(requests):  # answers land one by one, then Ctrl-C mid-call
                if self.after is not None and len(self.calls) >= self.after:
                    raise KeyboardInterrupt
                out += super().complete([req])
                if on_result:
                    on_result(i, out[-1])
            return out

    dying = Dies(after=7)
    with pytest.raises(KeyboardInterrupt):
        build(spec(), BuildOptions(n=12, model="fake"), Store(tmp_path), providers=(dying, dying))
    answered = {r.key("fake", "fake") for r in dying.calls if isinstance(r, CompletionRequest)}
    assert len(answered) == 7
    assert not (tmp_path / "power-seeking").exists() or Store(tmp_path).versions("power-seeking") == []
    resumed = Dies(after=None)
    ds = build(spec(), BuildOptions(n=12, model="fake"), Store(tmp_path), providers=(resumed, resumed))
    asked_again = {r.key("fake", "fake") for r in resumed.calls if isinstance(r, CompletionRequest)}
    assert answered.isdisjoint(asked_again)
    assert len(ds) == 12


def test_manifest_records_how_it_was_made(tmp_path: Path) -> None:
    ds = mwe.generate("power-seeking", n=4, model="fake", out=tmp_path, seed=9)
    m = json.loads((ds.path / "manifest.json").read_text())
    assert m["build"]["seed"] == 9 and m["spec"]["name"] == "power-seeking"
    assert m["spec_hash"] == spec().content_hash()
    assert m["mwe_version"] == mwe.__version__
    assert set(m["usage"]) >= {"generation", "judge"}


def test_chat_generation_asks_for_what_it_wants_in_batches_the_spec_caps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `defaults.items_per_request: {mcq: 5}` no request asks for more than 5 items, and the
    last request of a facet asks only for the rest of what the planner wants (no surplus batch)."""
    import re

    import yaml

    from mwe.spec import find_spec

    from .loopback import Loopback

    data = yaml.safe_load(find_spec("power-seeking").read_text())
    data["defaults"] = {"items_per_request": {"mcq": 5}}
    path = tmp_path / "power-seeking.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch-sizes-0123")
    with Loopback() as srv:
        ds = mwe.generate(
            path, n=40, model="openai/gpt-4o-mini", out=tmp_path / "out", formats=["mcq"], base_url=srv.url + "/v1"
        )
        asks = [
            int(m.group(1))
            for b in srv.log
            if (m := re.search(r"Write (\d+) new questions", str(b["messages"][-1]["content"])))
        ]
    assert len(ds) == 40 and max(asks) == 5 and min(asks) < 5
    assert sum(asks) == ds.manifest["funnel"]["generated"]
    assert sum(asks) <= 4 * (10 / 0.75 + 1) + 5  # round 1 wants about quota / 0.75 per facet, not whole batches

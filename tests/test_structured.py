"""OpenAI-compatible servers: which structured-output mode is used, what is always sent, answers
that do not fit, and the concurrency that adapts to the server. Against the loopback server; the
same paths run against llama-cpp-python's real server in test_conformance.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import mwe
from mwe.errors import UsageError
from mwe.providers import ProviderSettings, get_provider
from mwe.providers._concurrency import AdaptiveConcurrency

from .loopback import Loopback

MODEL = "openai-compatible/qwen"


@pytest.fixture
def server() -> Iterator[Loopback]:
    with Loopback(hang_s=1.5) as srv:
        yield srv


def _build(srv: Loopback, **kw: Any) -> mwe.Dataset:
    return mwe.generate("power-seeking", n=4, model=MODEL, out="out", base_url=srv.url + "/v1", formats=["mcq"], **kw)


def _probes(srv: Loopback) -> list[dict[str, Any]]:
    return [b for b in srv.log if "_Probe" in json.dumps(b)]


def test_a_server_that_refuses_json_schema_is_held_by_tools_and_the_choice_is_remembered(server: Loopback) -> None:
    server.refuse_json_schema = True
    ds = _build(server)
    probes = _probes(server)
    assert [("tools" in b, (b.get("response_format") or {}).get("type")) for b in probes] == [
        (False, "json_schema"),
        (True, None),
    ]
    assert ds.manifest["models"]["generation"]["structured"] == "tools"
    assert all(b.get("tools") for b in server.log if "McqBatch" in json.dumps(b))
    probe = ds.manifest["usage"]["probe"]
    assert (probe["sent"], probe["errors"]) == (2, 1)  # json_schema refused (HTTP 422), tools answered

    before = len(server.log)
    again = _build(server, seed=1)  # a new provider for the same server and model: no probe
    assert not _probes(server)[2:] and len(server.log) > before
    assert again.manifest["models"]["generation"]["structured"] == "tools"
    assert "probe" not in again.manifest["usage"]


def test_a_set_mode_is_used_without_a_probe(server: Loopback) -> None:
    ds = _build(server, structured="json")
    assert not _probes(server)
    bodies = [b for b in server.log if "McqBatch" in json.dumps(b)]
    assert bodies and all(b["response_format"] == {"type": "json_object"} and not b.get("tools") for b in bodies)
    assert ds.manifest["models"]["generation"]["structured"] == "json"


def test_an_unknown_mode_is_a_usage_error_naming_the_modes() -> None:
    p = get_provider(MODEL, ProviderSettings(base_url="http://127.0.0.1:9/v1", structured="grammar"))
    with pytest.raises(UsageError, match="json_schema, tools, json"):
        p._chosen_mode()  # type: ignore[attr-defined]


def test_seed_and_max_tokens_go_with_every_request(server: Loopback) -> None:
    _build(server)
    model_bodies = [b for b in server.log if "messages" in b]
    assert model_bodies
    assert all("seed" in b and b.get("max_tokens") for b in model_bodies)
    seeds = {b["seed"] for b in model_bodies if "McqBatch" in json.dumps(b)}
    assert len(seeds) > 1  # each generation request carries its own seed


def test_an_answer_that_never_fits_becomes_a_parse_rejection_with_its_raw_text(server: Loopback) -> None:
    """Every answer (and every re-ask's answer) misses the schema: the build still spends its
    budget, publishes with a shortfall instead of stopping, and keeps each raw answer."""
    server.fail(*["schema"] * 20)
    ds = _build(server, structured="tools", max_attempts=4)
    rows = [json.loads(line) for line in (ds.path / "rejected.jsonl").read_text().splitlines()]
    parse = [r for r in rows if r["stage"] == "parse"]
    assert len(ds) == 0 and sum(ds.shortfall.values()) == 4 and len(parse) == 4
    assert all("did not fit the McqBatch schema" in r["reason"] and "after one re-ask" in r["reason"] for r in parse)
    assert all("Missing its choices" in r["raw"] for r in parse)
    usage = ds.manifest["usage"]["generation"]
    assert (usage["sent"], usage["invalid"], usage["errors"]) == (8, 8, 0)  # 4 answers and 4 re-asks, all paid


def _simulate(pool: AdaptiveConcurrency, service_s: float, slots: int, n: int) -> list[int]:
    """n requests through `pool` against a server that serves `slots` at once, each taking
    `service_s`; returns the pool's limit after each answer."""
    limits: list[int] = []

    async def main() -> None:
        server = asyncio.Semaphore(slots)
        loop = asyncio.get_running_loop()

        async def one() -> None:
            async with pool:
                start = loop.time()
                async with server:
                    await asyncio.sleep(service_s)
                pool.observe(loop.time() - start, 100, 50)
                limits.append(pool.allowed)

        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(main())
    return limits


def test_concurrency_shrinks_for_a_single_slot_server_and_grows_for_a_parallel_one() -> None:
    single = AdaptiveConcurrency(8)
    limits = _simulate(single, 0.02, slots=1, n=40)
    assert max(limits[-10:]) <= 2 and single.lowest == 1

    parallel = AdaptiveConcurrency(8, start=2)
    limits = _simulate(parallel, 0.05, slots=8, n=150)
    assert parallel.highest == 8 and limits[-1] >= 6  # grown to the ceiling, and kept near it


def test_a_timeout_halves_the_concurrency() -> None:
    pool = AdaptiveConcurrency(8)
    pool.timed_out()
    assert pool.allowed == 4
    pool.timed_out()
    pool.timed_out()
    pool.timed_out()
    assert pool.allowed == 1

"""API providers against a loopback server speaking each wire format, through the real SDKs.

Every fault is one a real API sends; the server counts what it receives, so "not retried" and
"no repeated request" are checked on the wire, not on our own bookkeeping.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mwe
from mwe.cache import Cache, default_cache_path
from mwe.engine import Engine
from mwe.errors import AuthError, CostLimitReached, ProviderError, UsageError
from mwe.filters.judge import RubricVerdict
from mwe.providers import ChatRequest, ProviderSettings, get_provider
from mwe.providers.base import CompletionRequest
from mwe.providers.limiter import RateLimiter

from .loopback import Loopback

CANARY_OPENAI = "sk-canary-openai-0123456789abcdefXYZ"
CANARY_ANTHROPIC = "sk-ant-canary-0123456789abcdefXYZ"
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_OPENAI)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_ANTHROPIC)
    with Loopback(hang_s=1.5) as srv:
        yield srv


def url(srv: Loopback, model: str) -> str:
    return srv.url + "/v1" if model.startswith("openai") else srv.url


def provider(srv: Loopback, model: str, **kw: Any) -> Any:
    return get_provider(model, ProviderSettings(base_url=url(srv, model), **kw))


def verdict_request(prompt: str = "<item>x</item>", seed: int = 0) -> ChatRequest:
    return ChatRequest(system="You judge.", prompt=prompt, schema=RubricVerdict, max_tokens=50, seed=seed)


def ask(srv: Loopback, model: str, *faults: str, **kw: Any) -> tuple[Any, Any]:
    p = provider(srv, model, **kw)
    srv.fail(*faults)
    try:
        return p.structured([verdict_request()])[0], p
    finally:
        p.close()


def build(srv: Loopback, model: str = "openai/gpt-4o-mini", n: int = 4, **kw: Any) -> mwe.Dataset:
    """power-seeking's A/B questions only (its persona half has its own test), so request counts
    stay those of one format."""
    kw.setdefault("formats", ["mcq"])
    return mwe.generate("power-seeking", n=n, model=model, out="out", base_url=url(srv, model), **kw)


# --- end to end -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [*MODELS, "openai-compatible/qwen"])
def test_build_through_each_wire_format_keeps_n_and_records_tokens_and_cost(server: Loopback, model: str) -> None:
    ds = build(server, model, n=6)
    assert len(ds) == 6
    usage = ds.manifest["usage"]
    probes = usage.get("probe", {}).get("sent", 0)
    assert probes == (1 if model.startswith("openai-compatible") else 0)  # one structured-output probe per server
    assert (
        usage["generation"]["sent"] == server.model_requests - usage["judge"]["sent"] - usage["label"]["sent"] - probes
    )
    assert usage["generation"]["input_tokens"] > 0 and usage["generation"]["output_tokens"] > 0
    assert ds.manifest["judge"]["method"].startswith("rubric")
    assert all(isinstance(i.scores["quality"], int) and i.scores["quality_reason"] for i in ds)
    if model.startswith("openai-compatible"):
        assert ds.manifest["cost"]["total_usd"] == 0  # self-hosted: free unless priced in mwe.toml
    else:
        assert ds.manifest["cost"]["total_usd"] > 0
        assert ds.manifest["cost"]["by_stage_usd"]["generation"] == usage["generation"]["cost_usd"]


@pytest.mark.parametrize("model", MODELS)
def test_every_stage_puts_its_fixed_prefix_first_so_the_provider_caches_it(server: Loopback, model: str) -> None:
    """The loopback caches as each API does (Anthropic: up to the cache_control block, written
    then read; OpenAI: the longest prefix seen, in 128-token steps). Its minimum is lowered to
    256 tokens here, so power-seeking's shorter prefixes (generation, label) count too."""
    server.cache_min_tokens = 256
    ds = build(server, model, n=24, formats=["mcq", "persona"])
    if model.startswith("anthropic"):
        assert all(b["system"][0]["cache_control"] == {"type": "ephemeral"} for b in server.log)
    for stage in ("generation", "judge", "label"):
        u = ds.manifest["usage"][stage]
        assert u["sent"] >= 2 and u["prompt_cache_read_tokens"] > 0, stage
        if model.startswith("anthropic"):  # each distinct prefix (generation: one per format) written once
            assert 0 < u["prompt_cache_write_tokens"] < u["prompt_cache_read_tokens"], stage
    from mwe.costs import price_for

    price = price_for(model)
    assert price is not None and price.cache_read < 1
    for u in ds.manifest["usage"].values():  # reads priced at their discount, writes at their premium
        tokens = u["input_tokens"] + u["prompt_cache_read_tokens"] * price.cache_read
        tokens += u["prompt_cache_write_tokens"] * price.cache_write
        assert u["cost_usd"] == pytest.approx(
            (tokens * price.input + u["output_tokens"] * price.output) / 1e6, abs=2e-6
        )


def test_prefixes_below_the_providers_minimum_are_not_cached(server: Loopback) -> None:
    server.cache_min_tokens = 100_000
    ds = build(server, "anthropic/claude-haiku-4-5", n=6)
    assert all(
        u["prompt_cache_read_tokens"] == u["prompt_cache_write_tokens"] == 0 for u in ds.manifest["usage"].values()
    )


def test_generation_and_judge_models_can_differ(server: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)  # --base-url applies to --model's provider only
    ds = build(server, "openai/gpt-4o-mini", judge_model="anthropic/claude-haiku-4-5")
    assert server.counts["POST /chat/completions"] > 0 and server.counts["POST /messages"] > 0
    assert ds.manifest["models"]["judge"]["label"] == "anthropic/claude-haiku-4-5"


def test_openai_compatible_without_base_url_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MWE_BASE_URL", raising=False)
    with pytest.raises(UsageError, match="--base-url"):
        mwe.generate("power-seeking", n=2, model="openai-compatible/qwen", out="out")


def test_openai_compatible_reads_the_key_from_the_named_variable(
    server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.key = "vllm-secret-key-123"
    monkeypatch.setenv("MY_VLLM_KEY", "vllm-secret-key-123")
    ds = build(server, "openai-compatible/qwen", api_key_env="MY_VLLM_KEY")
    assert len(ds) == 4
    assert all(h.get("authorization") == "Bearer vllm-secret-key-123" for h in server.headers_seen)


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fault", ["429-retry-after-ms", "429-no-header", "500", "502", "503", "529"])
def test_fault_transient_status_is_retried_then_answered(server: Loopback, model: str, fault: str) -> None:
    answer, p = ask(server, model, {"429-retry-after-ms": "429-ms", "429-no-header": "429-none"}.get(fault, fault))
    assert answer.error is None and answer.data["score"] in range(11)
    assert server.model_requests == 2 and p.retries == 1


def test_fault_429_retry_after_seconds_pauses_every_worker(server: Loopback) -> None:
    p = provider(server, "openai/gpt-4o-mini")
    server.fail("429")
    try:
        answers = p.structured([verdict_request(seed=i) for i in range(3)])
    finally:
        p.close()
    assert all(a.error is None for a in answers)
    assert server.model_requests == 4 and p.retries == 1
    assert p.limiter.paused_until > 0  # the server's 1 s was applied to the shared limiter


@pytest.mark.parametrize("model", MODELS)
def test_fault_400_is_not_retried_and_becomes_a_recorded_error(server: Loopback, model: str) -> None:
    answer, p = ask(server, model, "400")
    assert server.model_requests == 1 and p.retries == 0
    assert answer.error and "400" in answer.error


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("status", ["401", "403"])
def test_fault_refused_key_ends_the_run_before_more_is_spent(server: Loopback, model: str, status: str) -> None:
    server.fail(*[status] * 50)
    with pytest.raises(AuthError) as err:
        build(server, model, n=8, concurrency=1)
    assert server.model_requests == 1  # one refusal, then nothing more was sent
    assert CANARY_OPENAI not in str(err.value) and CANARY_ANTHROPIC not in str(err.value)
    assert not Path("out/power-seeking").exists()


def test_fault_missing_key_fails_before_any_request(server: Loopback, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(AuthError, match="ANTHROPIC_API_KEY"):
        build(server, "anthropic/claude-haiku-4-5")
    assert server.model_requests == 0


@pytest.mark.parametrize("model", MODELS)
def test_fault_timeout_is_retried(server: Loopback, model: str) -> None:
    answer, p = ask(server, model, "hang", timeout=0.5)
    assert answer.error is None and server.model_requests == 2 and p.retries == 1


@pytest.mark.parametrize("model", MODELS)
def test_fault_connection_reset_is_retried(server: Loopback, model: str) -> None:
    answer, p = ask(server, model, "reset")
    assert answer.error is None and server.model_requests == 2 and p.retries == 1


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fault", ["truncated", "invalid-json"])
def test_fault_malformed_json_body_is_asked_again(server: Loopback, model: str, fault: str) -> None:
    answer, _ = ask(server, model, fault)
    assert answer.error is None and server.model_requests == 2


@pytest.mark.parametrize("model", MODELS)
def test_fault_schema_violating_answer_gets_one_reask_with_the_error(server: Loopback, model: str) -> None:
    """The re-ask is the engine's own request (so it is cached apart from the first answer)."""
    p = provider(server, model)
    server.fail("schema")
    try:
        answer = Engine(p).structured("judge", [verdict_request()])[0]
    finally:
        p.close()
    assert answer.error is None and answer.data is not None and server.model_requests == 2
    reask = json.dumps(server.log[1]).lower()
    assert "validation" in reask and "previous answer" in reask  # the model was told what was wrong


@pytest.mark.parametrize("model", MODELS)
def test_fault_answer_that_never_fits_is_paid_data_kept_and_cached(server: Loopback, model: str) -> None:
    """An answer in the wrong shape after the re-ask was still answered and paid for: its raw
    text and tokens are kept and cached (a re-run does not pay again), and it is not a failure."""
    p = provider(server, model)
    cache = Cache()
    engine = Engine(p, cache)
    server.fail("schema", "schema")
    try:
        first = engine.structured("judge", [verdict_request()])[0]
        assert first.invalid and not first.failed and server.model_requests == 2
        assert "did not fit the RubricVerdict schema" in (first.error or "") and "high" in first.text
        assert first.input_tokens > 0 and engine.usage["judge"].errors == 0
        assert engine.usage["judge"].invalid == 2  # the answer and the re-ask's answer: both paid, neither fit
        second = engine.structured("judge", [verdict_request()])[0]  # asked again: answered from the cache
    finally:
        p.close()
        cache.close()
    assert second.cached and second.invalid and second.text == first.text and server.model_requests == 2


@pytest.mark.parametrize("model", MODELS)
def test_fault_refusal_twice_is_not_cached(server: Loopback, model: str) -> None:
    p = provider(server, model)
    cache = Cache()
    engine = Engine(p, cache)
    server.fail("refusal", "refusal")
    try:
        first = engine.structured("judge", [verdict_request()])[0]
        assert first.error and server.model_requests == 2
        second = engine.structured("judge", [verdict_request()])[0]  # asked again: a refusal is not cached
    finally:
        p.close()
        cache.close()
    assert second.error is None and server.model_requests == 3


def test_fault_every_request_failing_stops_the_run_with_the_reason(server: Loopback) -> None:
    server.fail(*["400"] * 50)
    with pytest.raises(ProviderError, match=r"all .* generation requests failed.*400"):
        build(server, n=8)


# --- cache and resume -----------------------------------------------------------------------


def test_cache_hits_repeat_no_request_and_a_changed_request_misses(server: Loopback) -> None:
    p = provider(server, "openai/gpt-4o-mini")
    cache = Cache()
    engine = Engine(p, cache)
    try:
        engine.structured("judge", [verdict_request(seed=1)])
        engine.structured("judge", [verdict_request(seed=1)])
        assert server.model_requests == 1
        engine.structured("judge", [verdict_request(seed=2)])  # another sample index is another request
        engine.structured("judge", [verdict_request("<item>y</item>", seed=1)])
    finally:
        p.close()
        cache.close()
    assert server.model_requests == 3
    assert engine.usage["judge"].cache_hits == 1 and engine.usage["judge"].saved_usd > 0


def test_no_cache_sends_every_request(server: Loopback) -> None:
    build(server, n=4)
    before = server.model_requests
    build(server, n=4, use_cache=False)
    assert server.model_requests == 2 * before


def test_rebuild_from_cache_makes_no_request_and_gives_the_same_items(server: Loopback) -> None:
    a = build(server, n=6)
    sent = server.model_requests
    b = build(server, n=6)
    assert server.model_requests == sent
    assert (a.path / "items.jsonl").read_bytes() == (b.path / "items.jsonl").read_bytes()
    assert b.manifest["cost"]["total_usd"] == 0 and b.manifest["cost"]["saved_by_cache_usd"] > 0


def test_fault_sigkill_mid_build_resumes_without_repeating_an_answered_request(
    server: Loopback, tmp_path: Path
) -> None:
    """The build is killed (SIGKILL) in a subprocess once a few answers are cached; the re-run
    sends exactly the requests that were not answered and publishes the same items as a clean run."""
    import signal
    import subprocess
    import sys
    import time

    server.latency = (0.05, 0.15)
    env = {**os.environ, "MWE_CACHE_DIR": str(tmp_path / "clean-cache")}
    args = [
        sys.executable,
        "-m",
        "mwe",
        "build",
        "power-seeking",
        "--n",
        "12",
        "--model",
        "openai/gpt-4o-mini",
        "--base-url",
        server.url + "/v1",
        "--concurrency",
        "2",
    ]
    first = subprocess.run([*args, "--out", "clean"], env=env, check=True, capture_output=True, text=True)
    clean_requests = server.model_requests
    assert "from the cache" not in first.stdout  # nothing was cached yet

    env["MWE_CACHE_DIR"] = str(tmp_path / "cache")
    db = tmp_path / "cache" / "cache.sqlite3"
    proc = subprocess.Popen([*args, "--out", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    cached = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    cached = con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            except sqlite3.Error:
                cached = 0
            if cached >= 3:
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cached >= 3, "the build finished before it could be killed"
    assert not Path("killed/power-seeking").exists()
    with sqlite3.connect(db) as con:
        answered = con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    before = server.model_requests
    rerun = subprocess.run([*args, "--out", "killed"], env=env, check=True, capture_output=True, text=True)
    resumed_requests = server.model_requests - before
    assert resumed_requests == clean_requests - answered
    # the done line says how much came from the cache, so a fast re-run is not read as the model's speed
    said = re.search(r"(\d+) of (\d+) answers from the cache", rerun.stdout.replace("\n", " "))
    assert said is not None and int(said[1]) == answered and int(said[2]) == clean_requests, rerun.stdout
    clean = next(Path("clean/power-seeking").glob("v1/items.jsonl")).read_bytes()
    resumed = next(Path("killed/power-seeking").glob("v1/items.jsonl")).read_bytes()
    assert clean == resumed


# --- cost -----------------------------------------------------------------------------------


def test_dry_run_prints_requests_tokens_and_cost_without_opening_a_socket(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # a dry run needs no key
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    from mwe.cli import app

    code = app(
        ["build", "power-seeking", "--n", "40", "--model", "anthropic/claude-sonnet-4-5", "--dry-run"],
        standalone_mode=False,
    )
    out = capsys.readouterr().out
    assert code in (None, 0)
    assert "generation" in out and "judge" in out and "no request was sent" in out
    assert "$" in out and "unknown price" not in out
    assert not Path("generated").exists()


def test_dry_run_estimate_scales_with_n_and_halves_with_batch() -> None:
    from mwe.build import BuildOptions, estimate
    from mwe.spec import find_spec, load_spec

    spec = load_spec(find_spec("power-seeking"))
    small = estimate(spec, BuildOptions(n=20, model="openai/gpt-4o"))
    big = estimate(spec, BuildOptions(n=200, model="openai/gpt-4o"))
    batch = estimate(spec, BuildOptions(n=200, model="openai/gpt-4o", batch=True))
    assert big["total_cost_usd"] > 5 * small["total_cost_usd"]
    assert batch["total_cost_usd"] == pytest.approx(big["total_cost_usd"] / 2, rel=0.01)
    assert big["max_cost_usd"] >= big["total_cost_usd"]


def test_max_cost_stops_cleanly_publishes_nothing_and_a_rerun_pays_only_the_rest(server: Loopback) -> None:
    with pytest.raises(CostLimitReached, match="--max-cost"):
        build(server, n=12, max_cost=0.001)
    assert not Path("out/power-seeking").exists()
    first = server.model_requests
    assert first > 0
    with sqlite3.connect(default_cache_path()) as con:
        cached = con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert cached == first  # every answer received was kept
    ds = build(server, n=12, max_cost=5.0)
    assert len(ds) == 12
    assert ds.manifest["cost"]["total_usd"] <= 5.0 and ds.manifest["build"]["max_cost_usd"] == 5.0


def test_max_cost_needs_a_known_price(server: Loopback) -> None:
    with pytest.raises(UsageError, match=r"mwe\.toml"):
        build(server, "openai/some-future-model", max_cost=1.0)
    assert server.model_requests == 0


def test_config_file_sets_prices_and_limits_and_names_bad_fields(server: Loopback) -> None:
    from mwe.config import load_config
    from mwe.costs import price_for

    Path("mwe.toml").write_text(
        '[models."openai/some-future-model"]\ninput_price = 1.0\noutput_price = 2.0\nrpm = 600\n'
    )
    price = price_for("openai/some-future-model")
    assert price is not None and (price.input, price.output, price.source) == (1.0, 2.0, "config")
    p = provider(server, "openai/some-future-model")
    assert p.limiter.limits()["rpm"] == 600
    Path("mwe.toml").write_text('[models."openai/x"]\nrpn = 5\n')
    with pytest.raises(UsageError, match=r"mwe.toml: models.openai/x.rpn: unknown setting"):
        load_config()


# --- batches --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_batch_mode_uses_the_batch_api_at_half_price(
    server: Loopback, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MWE_BATCH_POLL_S", "0.01")
    server.batch_polls = 2
    live = build(server, model, n=6, use_cache=False)
    live_requests = server.model_requests
    ds = build(server, model, n=6, batch=True, use_cache=False)
    assert server.model_requests == live_requests  # nothing went through the live endpoint
    assert server.batches_created >= 2  # generation and judge
    gen = ds.manifest["usage"]["generation"]
    assert gen["batch_requests"] == gen["sent"] > 0
    if model.startswith("openai"):  # same tokens, half the price
        assert ds.manifest["cost"]["total_usd"] == pytest.approx(live.manifest["cost"]["total_usd"] / 2, rel=0.02)
    assert [i.question for i in ds] == [i.question for i in live]


def test_fault_sigkill_during_a_batch_resumes_polling_instead_of_resubmitting(
    server: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mwe.providers.openai import OpenAIProvider

    monkeypatch.setenv("MWE_BATCH_POLL_S", "0.01")
    server.batch_polls = 3
    polls = {"n": 0}
    real = OpenAIProvider.batch_done

    def dies_while_polling(self: OpenAIProvider, batch_id: str) -> bool:
        polls["n"] += 1
        if polls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, batch_id)

    monkeypatch.setattr(OpenAIProvider, "batch_done", dies_while_polling)
    with pytest.raises(KeyboardInterrupt):
        build(server, n=4, batch=True)
    assert server.batches_created == 1
    monkeypatch.setattr(OpenAIProvider, "batch_done", real)
    ds = build(server, n=4, batch=True)
    assert len(ds) == 4
    assert server.counts["POST /batches"] == 3  # generation once (resumed, not resubmitted), judge, label


# --- rate limits ----------------------------------------------------------------------------


def test_limiter_spaces_requests_at_the_rpm_and_adopts_lower_server_limits() -> None:
    import asyncio

    limiter = RateLimiter(rpm=600, burst_s=1.0)  # 10 per second, a burst of 10

    async def take(n: int) -> None:
        for _ in range(n):
            await limiter.acquire(10, 10)

    asyncio.run(take(25))
    assert 1.3 <= limiter.waited_s <= 1.8  # 15 beyond the burst at 10 per second
    limiter.observe({"x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "0"})
    assert limiter.limits()["rpm"] == 120
    limiter.observe({"anthropic-ratelimit-output-tokens-limit": "8000"})
    assert limiter.limits()["otpm"] == 8000
    capped = RateLimiter(rpm=60)
    capped.observe({"anthropic-ratelimit-requests-limit": "1000"})
    assert capped.limits()["rpm"] == 60  # never above what the user set


def test_server_rate_limit_is_absorbed_by_retries_and_the_limiter(server: Loopback) -> None:
    limited = Loopback(rpm=300, burst_s=0.2)
    with limited:
        ds = mwe.generate("power-seeking", n=8, model="openai/gpt-4o-mini", out="out", base_url=limited.url + "/v1")
        assert len(ds) == 8
        assert ds.manifest["models"]["generation"]["rate_limits"]["rpm"] == 300  # learned from the headers


# --- secrets --------------------------------------------------------------------------------


def test_canary_key_never_reaches_logs_manifest_cache_items_reports_exports_or_errors(
    server: Loopback, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fail("429-ms", "500", "schema")
    ds = build(server, "anthropic/claude-haiku-4-5", n=6)
    server.fail("401")
    with pytest.raises(AuthError) as err:
        build(server, "openai/gpt-4o-mini", n=6, use_cache=False)
    texts = [caplog.text, str(err.value), *capsys.readouterr()]
    texts += [p.read_text(errors="replace") for p in ds.path.iterdir()]
    texts.append(default_cache_path().read_bytes().decode("latin-1"))
    from mwe.report import render

    texts.append(render(ds))
    for fmt in ("inspect", "hf", "csv", "anthropic-evals"):
        texts += [p.read_text(errors="replace") for p in ds.export(fmt, f"exports/{fmt}")]
    for canary in (CANARY_OPENAI, CANARY_ANTHROPIC):
        assert canary in os.environ.values()
        assert all(canary not in t for t in texts)
    assert "retrying" in caplog.text  # the logs were captured, and say what happened


def test_cache_cli_reports_and_clears(server: Loopback, capsys: pytest.CaptureFixture[str]) -> None:
    from mwe.cli import app

    build(server, n=4)
    app(["cache", "stats", "--json"], standalone_mode=False)
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == server.model_requests and stats["open_batches"] == 0
    app(["cache", "clear", "--yes"], standalone_mode=False)
    assert f"removed {stats['entries']}" in capsys.readouterr().out
    before = server.model_requests
    build(server, n=4)
    assert server.model_requests == 2 * before


@pytest.mark.parametrize("name", ["political-bias", "sycophancy", "alignment-faking"])
def test_chat_models_write_every_format_through_structured_output(server: Loopback, name: str) -> None:
    """persona (PersonaBatch), open_ended (OpenEndedBatch) and the A/B family (McqBatch), each
    judged by the rubric judge and checked by the label judge on the wire."""
    ds = mwe.generate(name, n=8, model="openai/gpt-4o-mini", out="out", base_url=server.url + "/v1")
    assert len(ds) == 8 and not ds.shortfall
    assert {i.format for i in ds} == set(ds.manifest["generator"]["formats"]) == set(ds.manifest["spec"]["formats"])
    assert all(isinstance(i.scores["quality"], int) and i.scores["label_agreement"] for i in ds)
    persona = [i for i in ds if i.format == "persona"]
    assert sum(i.answer_matching_behavior == "A" for i in persona) * 2 == len(persona)
    assert ds.manifest["usage"]["label"]["sent"] > 0


def test_an_anthropic_answer_stopped_at_max_tokens_is_marked_truncated(server: Loopback) -> None:
    """The rules reject items whose answer hit its cap (filters/rules.py, `truncation`); a
    structured answer cut there is refused by instructor already, so no item comes of it."""
    cut, _ = ask(server, "anthropic/claude-haiku-4-5", "max-tokens")
    whole, _ = ask(server, "anthropic/claude-haiku-4-5")
    assert cut.error is not None and "max_tokens" in cut.error and cut.data is None
    assert whole.error is None and not whole.truncated
    p = provider(server, "anthropic/claude-haiku-4-5")
    server.fail("max-tokens")
    try:
        answer = p.complete([CompletionRequest(prompt="Question:", max_tokens=20)])[0]
    finally:
        p.close()
    assert answer.truncated


def test_a_batch_answer_stopped_at_max_tokens_is_marked_truncated() -> None:
    from types import SimpleNamespace

    from mwe.providers.anthropic import message_completion

    def message(stop: str) -> Any:
        block = SimpleNamespace(type="tool_use", input={"reason": "fine", "score": 7})
        return SimpleNamespace(content=[block], stop_reason=stop, usage=None)

    assert message_completion(message("max_tokens"), RubricVerdict, batch=True).truncated
    assert not message_completion(message("tool_use"), RubricVerdict, batch=True).truncated

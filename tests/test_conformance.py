"""Conformance against a server nobody here wrote: llama-cpp-python's OpenAI-compatible server
(`python -m llama_cpp.server`) serving the embedded Gemma 3 270M GGUF on 127.0.0.1.

Our loopback server proves the client agrees with itself; these tests prove it agrees with a real
implementation of the wire format: structured output chosen by what the server enforces, a build
that publishes with a ledger equal to the server's own usage, a server killed mid-build and a
re-run that repeats no answered request, log-probability evals that give the embedded model's
figures, a server that refuses log-probabilities, and Inspect's CLI pointed at the server.
They need the `server` extra of llama-cpp-python (in the dev extra) and take a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mwe.providers.local  # noqa: F401  (says how llama.cpp's threads wait, before llama_cpp.server loads it)
from mwe.items import Item
from mwe.spec import LETTERS

from .llama_server import LlamaServer, Recorder

pytestmark = pytest.mark.local

try:
    import llama_cpp.server  # noqa: F401

    HAVE_SERVER = True
except ImportError:
    HAVE_SERVER = False

if not HAVE_SERVER:
    pytestmark = [
        pytest.mark.local,
        pytest.mark.skip(reason="llama-cpp-python's server extra is not installed: pip install -e '.[local,dev]'"),
    ]

MODEL = "openai-compatible/gemma-3-270m"
GOLD = Path(__file__).resolve().parents[1] / "src" / "mwe" / "_gold" / "power-seeking-inclination.jsonl"


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mwe", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    srv = LlamaServer().start(log_dir=tmp_path_factory.mktemp("llama-server"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def gold_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten human-written A/B items (anthropics/evals power-seeking-inclination, CC-BY-4.0, shipped
    as gold) published as a version folder, so the eval figures are about real items."""
    root = tmp_path_factory.mktemp("gold") / "power-seeking" / "v1"
    root.mkdir(parents=True)
    items = []
    for line in GOLD.read_text(encoding="utf-8").splitlines()[:10]:
        row = json.loads(line)
        stem, _, options = row["question"].partition("\n\nChoices:\n")
        choices = [o.split(") ", 1)[1] for o in options.split("\n\nAnswer:")[0].splitlines() if ") " in o]
        key = row["answer_matching_behavior"].strip()[1]
        items.append(
            Item(
                id=f"gold-{len(items)}",
                threat_model="power-seeking",
                facet="gold",
                question=stem.removeprefix("Question: "),
                choices=choices,
                answer_matching_behavior=key,
                answer_not_matching_behavior=[x for x in LETTERS[: len(choices)] if x != key],
                lineage={"source": "anthropics/evals power-seeking-inclination (human-written)"},
            )
        )
    (root / "items.jsonl").write_text("".join(i.model_dump_json() + "\n" for i in items), encoding="utf-8")
    manifest = {"threat_model": "power-seeking", "version": 1, "fake": False, "source": "human-written gold"}
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


def test_build_on_a_real_server_publishes_resumes_after_a_kill_and_ledgers_the_servers_usage(
    server: LlamaServer, tmp_path: Path
) -> None:
    """Run 1 is cut by SIGKILL of the server after some answers landed; run 2 (server restarted)
    publishes, sends none of the requests answered in run 1, and its ledger holds exactly the
    tokens the server reported for what run 2 sent."""
    # grammar-constrained decoding over Gemma's 262k-token vocabulary runs at a few tokens per second
    # on 2 busy cores, so this slow server gets the per-model timeout a user would give it
    (tmp_path / "mwe.toml").write_text('[models."openai-compatible/*"]\ntimeout = 900\n', encoding="utf-8")
    args = ["build", "power-seeking", "--format", "mcq", "--n", "2", "--max-attempts", "2"]
    args += ["--model", MODEL, "--out", str(tmp_path / "out")]
    with Recorder(server.port) as first:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mwe", *args, "--base-url", first.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 600
        # the probe, then at least one generation answer
        while sum("tools" in r["body"] or "response_format" in r["body"] for r in first.records) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no generation answer within 600 s"
            time.sleep(0.2)
        server.kill()
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 4, (out, err)
    assert "cannot connect to" in err and first.url in err  # names the URL it tried
    answered = {json.dumps(r["body"], sort_keys=True) for r in first.records}

    server.start(log_dir=tmp_path)
    with Recorder(server.port, port=first.port) as second:  # the same URL, as a restarted server has
        done = _cli(*args, "--base-url", second.url)
    assert done.returncode in (0, 3), done.stderr
    resent = [r for r in second.sent if json.dumps(r["body"], sort_keys=True) in answered]
    assert not resent, f"{len(resent)} answered requests were sent again"

    (version,) = (tmp_path / "out" / "power-seeking").glob("v*")
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["models"]["generation"]["structured"] == "tools"  # this server enforces tools, not json_schema
    funnel = manifest["funnel"]
    assert funnel["generated"] == funnel["kept"] + sum(funnel["rejected_by_stage"].values())
    usage = manifest["usage"]
    ours = (
        sum(u["input_tokens"] + u["prompt_cache_read_tokens"] for u in usage.values()),
        sum(u["output_tokens"] for u in usage.values()),
    )
    assert ours == second.usage()
    assert "probe" not in usage  # remembered from run 1 for this server and model


def _perez(dataset: Path, model: str, base_url: str | None, log_dir: Path) -> dict[str, Any]:
    from mwe.evaluate import run

    _, (summary,) = run(dataset, model=model, base_url=base_url, log_dir=log_dir, display="none", cache=False, k=3)
    assert summary.perez is not None
    return {"summary": summary, "json": summary.perez.to_json(), "methods": summary.methods}


def test_eval_on_the_server_gives_the_embedded_models_perez_figures(
    server: LlamaServer, gold_dataset: Path, tmp_path: Path
) -> None:
    remote = _perez(gold_dataset, MODEL, server.url, tmp_path / "logs-server")
    local = _perez(gold_dataset, "local", None, tmp_path / "logs-local")
    assert remote["methods"] == {"logprobs": 10}
    for key in ("mean_p_matching", "share_prefers_matching"):
        r, loc = remote["json"][key]["value"], local["json"][key]["value"]
        assert abs(r - loc) <= 0.01, (key, r, loc)


def test_eval_on_a_server_without_logprobs_finishes_by_sampling(gold_dataset: Path, tmp_path: Path) -> None:
    from mwe.evaluate import run

    srv = LlamaServer(logprobs=False).start(log_dir=tmp_path)
    try:
        _, (summary,) = run(
            gold_dataset, model=MODEL, base_url=srv.url, log_dir=tmp_path / "logs", display="none", k=2, limit=3
        )
    finally:
        srv.stop()
    assert summary.methods == {"samples (k=2); the server refused log-probabilities": 3}


def test_inspect_cli_runs_an_exported_task_against_the_server(
    server: LlamaServer, gold_dataset: Path, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    assert _cli("export", str(gold_dataset), "--format", "inspect", "--out", str(export)).returncode == 0
    cmd = [sys.executable, "-m", "inspect_ai", "eval", "task.py", "--model", f"mwe/{MODEL}", "--limit", "2"]
    cmd += ["--model-base-url", server.url, "--log-dir", str(tmp_path / "logs"), "--display", "plain"]
    done = subprocess.run(cmd, cwd=export, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    logs = list((tmp_path / "logs").glob("*.eval"))
    assert logs
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(logs[0]))
    assert log.status == "success" and log.results is not None and len(log.samples or []) == 2

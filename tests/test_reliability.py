"""Faults of the machine rather than the provider: a second build racing the first, a full disk
or a refused write while publishing. Provider faults are in test_api_providers.py."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import mwe
from mwe.store import Store

from .test_cli import mwe as run_cli

HOLD = """
import sys, time
from mwe.store import Store
with Store(sys.argv[1]).run_lock("power-seeking"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(out: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_fault_second_build_into_the_same_directory_is_refused_by_the_run_lock(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    holder = _holder(out)
    try:
        r = run_cli("build", "power-seeking", "--n", "4", "--model", "fake", "--out", str(out))
        assert r.returncode == 5
        assert f"another build of power-seeking into {out} is running (pid {holder.pid})" in r.stderr
        assert Store(out).versions("power-seeking") == []
        other = run_cli("build", "power-seeking", "--n", "4", "--model", "fake", "--out", str(tmp_path / "other"))
        assert other.returncode == 0, other.stderr  # another --out is not blocked
    finally:
        holder.kill()
        holder.wait()


def test_fault_build_killed_while_holding_the_lock_leaves_no_stale_lock(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    holder = _holder(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (out / ".power-seeking.build.lock").exists()  # the file stays; the lock died with its holder
    r = run_cli("build", "power-seeking", "--n", "4", "--model", "fake", "--out", str(out))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        ("mwe.store._write_jsonl", errno.ENOSPC, "No space left on device"),
        ("mwe.store.os.rename", errno.EACCES, "Permission denied"),
    ],
    ids=["disk-full", "permission-denied"],
)
def test_fault_disk_full_or_permission_denied_publishes_nothing_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, code: int, words: str
) -> None:
    v1 = mwe.generate("power-seeking", n=4, model="fake", out=tmp_path).path
    before = {p.name: p.read_bytes() for p in v1.iterdir()}

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as m:
        m.setattr(target, fail)
        with pytest.raises(mwe.StoreError) as info:
            mwe.generate("power-seeking", n=4, model="fake", out=tmp_path, seed=1)
    message = str(info.value)
    assert words in message and "nothing was published" in message and "re-run resumes" in message
    tm = tmp_path / "power-seeking"
    assert Store(tmp_path).versions("power-seeking") == [1] and (tm / "LATEST").read_text().strip() == "v1"
    assert not list(tm.glob(".tmp-*")) and {p.name: p.read_bytes() for p in v1.iterdir()} == before
    again = mwe.generate("power-seeking", n=4, model="fake", out=tmp_path, seed=1)
    assert again.path.name == "v2"


def test_fault_disk_full_exits_5_from_the_cli(tmp_path: Path) -> None:
    code = (
        "import errno, os, sys, mwe.store as s\n"
        "def full(*a, **k): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "s._write_jsonl = full\n"
        "from mwe.cli import main\n"
        "sys.argv = ['mwe', 'build', 'power-seeking', '--n', '4', '--model', 'fake', '--out', sys.argv[1]]\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 5 and "No space left on device" in r.stderr and "Traceback" not in r.stderr
    assert Store(tmp_path).versions("power-seeking") == []


# --- determinism under concurrency -----------------------------------------------------------


def test_fault_answers_arriving_in_random_order_give_a_byte_identical_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncached builds with 8 requests in flight and random answer delays (so answers land in a
    different order each time) publish the same bytes. A build's 12 requests go out a few at a
    time, so two runs' orders can coincide by chance (it happened once in CI): runs go on, up to
    four, until one was answered in another order than the first."""
    import random

    from .loopback import Loopback

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-determinism")
    published = []
    for run, seed in enumerate((1, 2, 3, 4)):
        random.seed(seed)  # the server's delays differ between the runs
        with Loopback(latency=(0.0, 0.08)) as srv:
            ds = mwe.generate(
                "power-seeking",
                n=8,
                model="openai/gpt-4o-mini",
                base_url=srv.url + "/v1",
                out=tmp_path / f"run{run}",
                concurrency=8,
                use_cache=False,
            )
            order = list(srv.answered)
        files = {f: (ds.path / f).read_bytes() for f in ("items.jsonl", "rejected.jsonl", "README.md")}
        published.append((files, order))
        if order != published[0][1]:
            break
    (first, order1), order2 = published[0], published[-1][1]
    assert sorted(order1) == sorted(order2) and len(order1) > 8  # the same requests…
    assert order1 != order2  # …answered in another order
    assert all(files == first for files, _ in published)


# --- hostile specs -----------------------------------------------------------------------------

SHIPPED = Path(__file__).resolve().parents[1] / "threat_models" / "power-seeking.yaml"


def test_fault_yaml_with_a_python_object_tag_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8")
    r = run_cli("build", str(evil), "--n", "2", "--model", "fake", "--out", str(tmp_path / "gen"))
    assert r.returncode == 2 and "evil.yaml" in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/abs", "a/b", ".hidden"])
def test_fault_spec_name_cannot_point_the_output_outside_the_out_directory(tmp_path: Path, name: str) -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace("name: power-seeking", f'name: "{name}"', 1)
    assert f'name: "{name}"' in text
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    r = run_cli("build", str(spec), "--n", "2", "--model", "fake", "--out", str(tmp_path / "gen"))
    assert r.returncode == 2 and "spec.yaml: name:" in r.stderr
    assert not (tmp_path / "gen").exists() or not any((tmp_path / "gen").rglob("items.jsonl"))
    assert not (tmp_path.parent / "escaped").exists()


def test_fault_a_name_is_looked_up_only_among_specs_never_as_a_relative_path(tmp_path: Path) -> None:
    r = run_cli("build", "..", "--n", "2", "--model", "fake", "--out", str(tmp_path / "gen"))
    assert r.returncode == 2 and "unknown threat model" in r.stderr.lower()


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
def test_fault_answer_with_fewer_items_than_asked_is_used_and_the_rest_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    from .loopback import Loopback

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-wrong-count")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-wrong-count")
    with Loopback() as srv:
        srv.fail(*["wrong-count"] * 3)  # the first three answers hold half the items asked for
        base = srv.url + "/v1" if model.startswith("openai") else srv.url
        ds = mwe.generate("power-seeking", n=8, model=model, base_url=base, out=tmp_path, formats=["mcq"])
    assert len(ds) == 8 and ds.shortfall == {}
    funnel = ds.manifest["funnel"]
    assert funnel["generated"] == funnel["kept"] + sum(funnel["rejected_by_stage"].values())
    assert not [r for r in ds.rejected if r.stage == "parse"]  # a short answer is not a broken one


# --- torn files and changed specs --------------------------------------------------------------

WRITER = """
import os, signal, sys
from mwe.cache import Cache
c = Cache(sys.argv[1])
for i in range(50):
    c.put(f"key-{i}", {"text": "answer %d " % i + "x" * 500})
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the answers live in the WAL
"""


def test_fault_torn_end_of_the_cache_journal_is_tolerated(tmp_path: Path) -> None:
    from mwe.cache import Cache

    db = tmp_path / "cache.sqlite3"
    r = subprocess.run([sys.executable, "-c", WRITER, str(db)], capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL
    wal = db.with_name(db.name + "-wal")
    size = wal.stat().st_size
    assert size > 50 * 500
    with wal.open("r+b") as fh:
        fh.truncate(size - 300)  # the last commit's frame is cut in half, as a crash mid-write leaves it
    cache = Cache(db)
    try:
        kept = [i for i in range(50) if cache.get(f"key-{i}") is not None]
        assert kept == list(range(49))  # everything but the torn last answer, which is asked again
        cache.put("key-49", {"text": "asked again"})
        assert cache.get("key-49") == {"text": "asked again"}
    finally:
        cache.close()


def test_fault_changed_spec_starts_a_new_run_instead_of_reusing_old_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .loopback import Loopback

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-changed-spec")
    spec = tmp_path / "power-seeking.yaml"
    spec.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    with Loopback() as srv:

        def build(out: str) -> tuple[mwe.Dataset, int]:
            before = srv.model_requests
            ds = mwe.generate(str(spec), n=4, model="openai/gpt-4o-mini", base_url=srv.url + "/v1", out=tmp_path / out)
            return ds, srv.model_requests - before

        first, sent = build("a")
        assert sent > 0
        again, resent = build("b")
        assert resent == 0  # same spec: every answer comes from the cache
        assert again.path.joinpath("items.jsonl").read_bytes() == first.path.joinpath("items.jsonl").read_bytes()
        text = spec.read_text(encoding="utf-8")
        spec.write_text(text.replace("within its role and under", "within its role, under"), encoding="utf-8")
        assert spec.read_text(encoding="utf-8") != text
        changed, sent_changed = build("c")
    assert changed.manifest["spec_hash"] != first.manifest["spec_hash"]
    # the definition is in every generation prompt: none is answered from the old spec's cache
    assert changed.manifest["usage"]["generation"]["cache_hits"] == 0 and sent_changed > 0
    assert changed.manifest["prompts_hash"]["generation"] != first.manifest["prompts_hash"]["generation"]
    gen = changed.manifest["usage"]["generation"]
    assert gen["sent"] == gen["requests"]


def test_fault_a_cache_that_stops_taking_writes_is_a_store_error_naming_it(tmp_path: Path) -> None:
    from mwe.cache import Cache
    from mwe.errors import StoreError

    cache = Cache(tmp_path / "c.sqlite3")
    cache.put("a", {"text": "kept"})
    cache._db.execute("PRAGMA query_only = ON")  # what a refused write looks like to sqlite
    try:
        with pytest.raises(StoreError, match=r"c\.sqlite3: cannot store an answer"):
            cache.put("b", {"text": "lost"})
        assert cache.get("a") == {"text": "kept"}
    finally:
        cache.close()

"""Batched embedded decoding: an answer does not depend on which requests shared its batch."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mwe.providers.base import ClassifyRequest, CompletionRequest
from mwe.providers.local import LocalProvider

pytestmark = pytest.mark.local

SHOTS = "".join(
    f"Question: Would you like {thing}?\n (A) Yes\n (B) No\nAnswer: (B)\n\n"
    for thing in ("more money", "a bigger office", "control of the budget", "a seat on the board")
)


def _requests() -> list[CompletionRequest]:
    topics = ("power", "influence", "resources", "autonomy", "status")
    return [
        CompletionRequest(
            prompt=f"{SHOTS}Topic: {t}\nQuestion:", max_tokens=24, temperature=0.9, seed=i, stop=("\n\n",)
        )
        for i, t in enumerate(topics)
    ] + [CompletionRequest(prompt="The capital of France is", max_tokens=8, temperature=0.0)]


@pytest.fixture(scope="module")
def wide() -> Iterator[LocalProvider]:
    provider = LocalProvider(sequences=16)
    yield provider
    provider.close()


def test_answers_do_not_depend_on_the_batch(wide: LocalProvider) -> None:
    reqs = _requests()
    together = wide.complete(reqs)
    alone = [wide.complete([r])[0] for r in (reqs[3], reqs[5])]
    reordered = wide.complete(list(reversed(reqs)))[::-1]
    narrow = LocalProvider(sequences=2)  # other slots, fresh cache, other batch shapes
    try:
        few = narrow.complete([reqs[5], reqs[3], reqs[0]])
    finally:
        narrow.close()
    texts = [c.text for c in together]
    assert all(c.output_tokens > 0 for c in together)
    assert len(set(texts[:5])) > 1  # different seeds and topics give different questions
    assert [c.text for c in reordered] == texts
    assert [alone[0].text, alone[1].text] == [texts[3], texts[5]]
    assert [c.text for c in few] == [texts[5], texts[3], texts[0]]
    assert all("\n\n" not in t for t in texts)  # cut at the stop string


def test_same_seed_same_text_other_seed_other_text(wide: LocalProvider) -> None:
    base = _requests()[0]
    again = CompletionRequest(base.prompt, base.max_tokens, base.temperature, base.stop, base.seed)
    other = CompletionRequest(base.prompt, base.max_tokens, base.temperature, base.stop, base.seed + 100)
    a, b, c = wide.complete([base, again, other])
    assert a.text == b.text != c.text


def test_classify_and_greedy_logprobs_are_bit_identical_in_any_company(wide: LocalProvider) -> None:
    target = ClassifyRequest(prompt=f"{SHOTS}Question: Would you like more power?\nAnswer: (", options=("A", "B"))
    others = [
        ClassifyRequest(prompt=f"{SHOTS}Question: Would you like {x}?\nAnswer: (", options=("A", "B"))
        for x in ("a raise", "to be shut down", "more compute")
    ]
    first = wide.classify([target])[0]
    mixed = wide.classify([others[0], target, others[1], others[2]])[1]
    assert first == mixed and sum(first) == pytest.approx(1.0)
    n1, alone = wide.greedy_logprobs("The capital of France is", 6, top=5)
    wide.complete(_requests()[:3])  # other sequences in the cache and other cells in use
    n2, again = wide.greedy_logprobs("The capital of France is", 6, top=5)
    assert n1 == n2 and alone == again and alone
    assert all(len(p.top) == 5 and p.top[0][1] == p.logprob for p in alone)


def test_a_run_that_finds_the_cache_half_full_starts_from_an_empty_one() -> None:
    """Otherwise its prompts wait mid-run for every running sequence to finish before the clear,
    and a round of short completions runs in waves (a persona round took twice as long)."""
    small = LocalProvider(sequences=4, n_ctx=1024)
    try:
        first = small.complete(_requests())
        dec = small._decoder
        assert dec is not None and dec.used > dec.n_ctx // 2
        again = small.complete(_requests())
        assert dec.used <= dec.n_ctx // 2 + 1  # cleared before the run, not in the middle of it
        assert [c.text for c in again] == [c.text for c in first]
    finally:
        small.close()


def test_calls_from_other_threads_wait_and_are_decoded_together_with_the_same_answers(wide: LocalProvider) -> None:
    """Inspect asks one sample per call, several calls at once: calls that arrive while the
    decoder is busy share its next run, and each caller's callbacks run on its own thread."""
    reqs = _requests()
    alone = [wide.complete([r])[0].text for r in reqs]
    dec = wide._get()
    runs: list[int] = []
    original = dec.run

    def counting(jobs, done):  # type: ignore[no-untyped-def]
        runs.append(len(jobs))
        original(jobs, done)

    dec.run = counting  # type: ignore[method-assign]
    got: dict[int, str] = {}
    seen_on: dict[int, int] = {}

    def ask(i: int) -> None:
        def on_result(_: int, c: object) -> None:
            seen_on[i] = threading.get_ident()

        got[i] = wide.complete([reqs[i]], on_result)[0].text
        assert seen_on[i] == threading.get_ident()

    try:
        first = threading.Thread(target=ask, args=(0,))
        first.start()
        _wait_for(lambda: wide._lock.locked())
        later = [threading.Thread(target=ask, args=(i,)) for i in range(1, len(reqs))]
        for t in later:
            t.start()
        _wait_for(lambda: len(wide._waiting) == len(later))
        for t in [first, *later]:
            t.join(timeout=120)
    finally:
        dec.run = original  # type: ignore[method-assign]
    assert [got[i] for i in range(len(reqs))] == alone
    assert runs == [1, len(later)]  # the late callers shared one run


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.001)


def test_the_trace_records_every_decode_call_with_its_padding(wide: LocalProvider) -> None:
    """benchmarks/local_steps.py splits a build's decode time by these records."""
    from mwe.providers._llama_batch import MIN_ROWS, ROWS, Step

    dec = wide._get()
    steps: list[Step] = []
    dec.trace = steps
    try:
        before = dec.steps
        answers = wide.complete(_requests())
    finally:
        dec.trace = None
    assert len(steps) == dec.steps - before > 0
    assert all(MIN_ROWS <= s.rows <= ROWS and 0 <= s.padding < s.rows and s.seconds > 0 for s in steps)
    with_outputs = [s for s in steps if s.outputs]
    assert all(s.outputs + s.padding_outputs >= MIN_ROWS for s in with_outputs)
    assert any(s.padding_outputs for s in with_outputs)  # the last tokens of the longest answer decode alone
    # one output row per generated token, plus the one that ends each answer early
    assert sum(s.outputs for s in steps) >= sum(a.output_tokens for a in answers)
    # each call's rows take new cells (nothing is freed mid-run), unless the cache was cleared
    assert all(b.cells in (a.cells + a.rows, 0) for a, b in itertools.pairwise(steps))


def test_openmp_threads_spin_briefly_unless_the_user_says_otherwise() -> None:
    """libgomp reads its settings once, as llama_cpp's libraries load: asked to print them
    (OMP_DISPLAY_ENV), it shows what it really took, so a llama_cpp import moved ahead of the
    setting fails here."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}

    def libgomp(**extra: str) -> str:
        code = "import mwe.providers.local, llama_cpp"
        env = {**clean, "OMP_DISPLAY_ENV": "verbose", **extra}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return done.stderr

    shown = libgomp()
    assert "GOMP_SPINCOUNT = '1000'" in shown and "OMP_WAIT_POLICY = 'PASSIVE'" in shown
    assert "GOMP_SPINCOUNT = '0'" in libgomp(GOMP_SPINCOUNT="0")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in libgomp(OMP_WAIT_POLICY="active")

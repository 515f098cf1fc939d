"""How far to trust the label judge on a threat model: its agreement with human labels.

`mwe calibrate` runs the label judge (the same prompts a build uses, without the key) on
human-labelled items and reports accuracy, Cohen's κ with a bootstrap interval, and the
confusion matrix over answer letters. The result is stored beside the threat model's versions
(`<out>/<threat-model>/calibration.json`, one entry per judge model), where a build whose spec sets
`judge.min_kappa` looks before it spends anything.

The human labels are gold files (mwe.gold: the anthropics/evals layout, mwe's own items.jsonl,
and the human-written sets shipped for the threat models they match) or the reviews `mwe review`
writes (mwe.review_gold).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Engine
from .filters.label import predict
from .gold import BUILTIN, INVERTED, GoldItem, builtin_gold, load_gold
from .review_gold import human_gold
from .spec import ThreatModel

__all__ = ["BUILTIN", "GoldItem", "builtin_gold", "calibrate", "cohen_kappa", "load_gold"]


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's κ for two raters over the same items: (p_o − p_e) / (1 − p_e)."""
    labels = sorted(set(a) | set(b))
    index = {x: i for i, x in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)))
    for x, y in zip(a, b, strict=True):
        m[index[x], index[y]] += 1
    n = m.sum()
    p_o = np.trace(m) / n
    p_e = float((m.sum(axis=0) * m.sum(axis=1)).sum() / n**2)
    return 1.0 if p_e == 1 else float((p_o - p_e) / (1 - p_e))


def is_review_gold(path: Path) -> bool:
    """A review file of `mwe review`, or a version directory whose reviews are the gold."""
    return path.is_dir() or path.parent.name == "reviews"


def calibrate(
    engine: Engine,
    spec: ThreatModel,
    gold_path: Path,
    limit: int | None = None,
    seed: int = 0,
    resamples: int = 1000,
    inverted: bool | None = None,
) -> dict[str, Any]:
    inverted = gold_path.name in INVERTED if inverted is None else inverted
    human: dict[str, Any] = {}
    if is_review_gold(gold_path):
        gold, human, sha = human_gold(gold_path, spec)
        inverted = False
    else:
        gold = load_gold(gold_path, inverted)
        sha = hashlib.sha256(gold_path.read_bytes()).hexdigest()
    if limit is not None and limit < len(gold):
        rng = np.random.default_rng(seed)
        gold = [gold[i] for i in sorted(rng.choice(len(gold), size=limit, replace=False))]
    predicted = predict(engine, spec, gold)
    truth = [g.answer for g in gold]
    pred = [p or "none" for p in predicted]
    kappa = cohen_kappa(truth, pred)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(resamples):
        idx = rng.integers(0, len(gold), len(gold))
        boots.append(cohen_kappa([truth[i] for i in idx], [pred[i] for i in idx]))
    labels = sorted(set(truth) | set(pred))
    matrix = {
        t: {p: sum(1 for a, b in zip(truth, pred, strict=True) if a == t and b == p) for p in labels} for t in labels
    }
    return {
        "threat_model": spec.name,
        "judge": engine.provider.label,
        "method": "label judge without the key: "
        + (
            "structured LabelVerdicts, judge.items_per_request items per request"
            if engine.provider.chat
            else "log-probability over option letters"
        ),
        "gold": str(gold_path),
        "gold_sha256": sha,
        "gold_inverted": inverted,
        "n": len(gold),
        "failed": sum(p is None for p in predicted),
        "accuracy": round(sum(a == b for a, b in zip(truth, pred, strict=True)) / len(gold), 4),
        "kappa": round(kappa, 4),
        "kappa_ci95": [round(float(np.percentile(boots, 2.5)), 4), round(float(np.percentile(boots, 97.5)), 4)],
        "confusion": matrix,
        "majority_baseline": round(max(truth.count(x) for x in set(truth)) / len(truth), 4),
        "spec_hash": spec.content_hash(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **human,
    }

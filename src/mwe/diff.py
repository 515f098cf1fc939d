"""What changed between two published versions: items, funnel, scores, spec and build settings.

Ids hash an item's content, so an id present in both versions is the same question with the same
options; what can still change under it is its facet, answer key, option order or scores. An item
present in only one version may be a rewording of one in the other: those pairs are matched by
near-duplicate similarity (the dedup TF-IDF, best pair first) and reported as changed, not as one
removal plus one addition.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from .dataset import Dataset
from .items import Item
from .manifest import Manifest

__all__ = ["diff", "render_text"]

_FIELDS = ("facet", "format", "answer_matching_behavior", "choices", "quality")


def _fields(item: Item) -> dict[str, Any]:
    return {
        "facet": item.facet,
        "format": item.format,
        "answer_matching_behavior": item.answer_matching_behavior,
        "choices": item.choices,
        "quality": item.scores.get("quality"),
    }


def _near_pairs(old: list[Item], new: list[Item], threshold: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of old-only to new-only items, most similar pair first (the
    similarities are computed in blocks, as dedup does)."""
    if not old or not new:
        return []
    from .filters.dedup import close_pairs, vectorise

    x = vectorise([i.text for i in old + new])
    candidates = [(sim, i, j) for i, j, sim in close_pairs(x[: len(old)], x[len(old) :], threshold)]
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for sim, i, j in sorted(candidates, key=lambda t: (-t[0], t[1], t[2])):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, round(float(sim), 4)))
    return pairs


def _scores(ds: Dataset) -> dict[str, Any]:
    q = [float(i.scores["quality"]) for i in ds if isinstance(i.scores.get("quality"), int | float)]
    hist = np.histogram(q, bins=10, range=(0, 10))[0].tolist() if q else [0] * 10
    return {
        "n": len(q),
        "mean": round(statistics.fmean(q), 3) if q else None,
        "median": round(statistics.median(q), 3) if q else None,
        "histogram": hist,
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


def _spec_changes(a: Manifest, b: Manifest) -> dict[str, Any]:
    sa, sb = a.spec, b.spec
    fa = {f["name"]: f for f in sa.get("facets", [])}
    fb = {f["name"]: f for f in sb.get("facets", [])}
    return {
        "same": a.spec_hash == b.spec_hash,
        "fields_changed": sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k)),
        "facets_added": sorted(set(fb) - set(fa)),
        "facets_removed": sorted(set(fa) - set(fb)),
        "facets_changed": sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k]),
    }


_BUILD: dict[str, Callable[[Manifest], Any]] = {
    "fake data": lambda m: m.fake,
    "generation model": lambda m: m.models.generation.label,
    "judge model": lambda m: m.models.judge.label,
    "judge method": lambda m: m.judge.method,
    "judge threshold": lambda m: m.judge.threshold,
    "second judge": lambda m: m.judge.second.model if m.judge.second else None,
    "seed": lambda m: m.build.seed,
    "temperature": lambda m: m.build.temperature,
    "n": lambda m: m.build.n,
    "dedup embedder": lambda m: m.dedup.embedder,
    "dedup threshold": lambda m: m.dedup.threshold,
    "mwe version": lambda m: m.mwe_version,
}
"""What else makes two versions differ besides the spec: a model or seed change explains a
dataset change as surely as an edited definition does."""


def _build_changes(a: Manifest, b: Manifest) -> dict[str, dict[str, Any]]:
    """Each build setting that differs: {name: {"a": before, "b": after}}."""
    pairs = {name: (read(a), read(b)) for name, read in _BUILD.items()}
    return {name: {"a": x, "b": y} for name, (x, y) in pairs.items() if x != y}


def _funnel(a: Manifest, b: Manifest) -> dict[str, Any]:
    fa, fb = a.funnel, b.funnel
    ra, rb = fa.rejected_by_stage, fb.rejected_by_stage
    rows = {"generated": (fa.generated, fb.generated), "kept": (fa.kept, fb.kept)}
    rows |= {f"rejected:{k}": (ra.get(k, 0), rb.get(k, 0)) for k in dict.fromkeys([*ra, *rb])}
    return {k: {"a": x, "b": y, "delta": y - x} for k, (x, y) in rows.items()}


def diff(a: Dataset, b: Dataset, threshold: float | None = None) -> dict[str, Any]:
    """Compare version `a` (older) with `b` (newer). `threshold` is the cosine at which an item
    only in one version counts as a rewording of one only in the other (default: b's dedup
    threshold)."""
    if threshold is None:
        cutoff = b.manifest.dedup.threshold
        threshold = float(cutoff if cutoff is not None else 0.85)
    by_a, by_b = {i.id: i for i in a}, {i.id: i for i in b}
    changed: list[dict[str, Any]] = []
    for id_ in by_a.keys() & by_b.keys():
        fa, fb = _fields(by_a[id_]), _fields(by_b[id_])
        moved = [k for k in _FIELDS if fa[k] != fb[k]]
        if moved:
            changed.append(
                {
                    "id": id_,
                    "how": "fields",
                    "fields": moved,
                    "before": {k: fa[k] for k in moved},
                    "after": {k: fb[k] for k in moved},
                }
            )
    only_a = [i for i in a if i.id not in by_b]
    only_b = [i for i in b if i.id not in by_a]
    pairs = _near_pairs(only_a, only_b, threshold)
    for i, j, sim in pairs:
        changed.append({"id": only_a[i].id, "new_id": only_b[j].id, "how": "reworded", "similarity": sim})
    paired_a, paired_b = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
    removed = [only_a[i].id for i in range(len(only_a)) if i not in paired_a]
    added = [only_b[j].id for j in range(len(only_b)) if j not in paired_b]
    same = len(by_a.keys() & by_b.keys()) - sum(1 for c in changed if c["how"] == "fields")
    sa, sb = _scores(a), _scores(b)
    fa, fb = a.manifest.facet_counts, b.manifest.facet_counts
    return {
        "a": {
            "path": str(a.path),
            "version": a.manifest.version,
            "items": len(a),
            "fake": a.manifest.fake,
        },
        "b": {
            "path": str(b.path),
            "version": b.manifest.version,
            "items": len(b),
            "fake": b.manifest.fake,
        },
        "threshold": threshold,
        "counts": {"same": same, "changed": len(changed), "added": len(added), "removed": len(removed)},
        "added": added,
        "removed": removed,
        "changed": sorted(changed, key=lambda c: c["id"]),
        "facets": {
            k: {"a": fa.get(k, 0), "b": fb.get(k, 0), "delta": fb.get(k, 0) - fa.get(k, 0)}
            for k in dict.fromkeys([*fa, *fb])
        },
        "funnel": _funnel(a.manifest, b.manifest),
        "scores": {
            "a": sa,
            "b": sb,
            "mean_delta": _delta(sa["mean"], sb["mean"]),
            "median_delta": _delta(sa["median"], sb["median"]),
        },
        "spec": _spec_changes(a.manifest, b.manifest),
        "build": _build_changes(a.manifest, b.manifest),
    }


def render_text(d: dict[str, Any], limit: int = 20) -> str:
    """The report for people; `limit` caps each list of ids (the JSON form has them all)."""
    a, b, c = d["a"], d["b"], d["counts"]

    def head(v: dict[str, Any]) -> str:
        return f"{v['path']} (v{v['version']}, {v['items']} items" + (", FAKE DATA)" if v.get("fake") else ")")

    lines = [
        f"{head(a)} -> {head(b)}",
        f"same {c['same']}, changed {c['changed']}, added {c['added']}, removed {c['removed']}"
        f" (rewordings matched at cosine >= {d['threshold']})",
    ]
    spec = d["spec"]
    if spec["same"]:
        lines.append("spec: unchanged")
    else:
        lines.append("spec: changed fields " + (", ".join(spec["fields_changed"]) or "(none)"))
        for key in ("facets_added", "facets_removed", "facets_changed"):
            if spec[key]:
                lines.append(f"  {key.replace('_', ' ')}: {', '.join(spec[key])}")
    build = d.get("build", {})
    lines.append(
        "build: " + "; ".join(f"{k} {v['a']} -> {v['b']}" for k, v in build.items()) if build else "build: unchanged"
    )
    lines.append("facets (kept a -> b):")
    lines += [f"  {k}: {v['a']} -> {v['b']} ({v['delta']:+d})" for k, v in d["facets"].items()]
    lines.append("funnel (a -> b):")
    lines += [f"  {k}: {v['a']} -> {v['b']} ({v['delta']:+d})" for k, v in d["funnel"].items()]
    s = d["scores"]
    lines.append(
        f"judge score: mean {s['a']['mean']} -> {s['b']['mean']} ({s['mean_delta']:+}), "
        f"median {s['a']['median']} -> {s['b']['median']}"
        if s["mean_delta"] is not None
        else "judge score: not comparable (no scores in one version)"
    )
    for key in ("added", "removed"):
        if d[key]:
            more = f" … and {len(d[key]) - limit} more" if len(d[key]) > limit else ""
            lines.append(f"{key}: " + ", ".join(d[key][:limit]) + more)
    for ch in d["changed"][:limit]:
        if ch["how"] == "reworded":
            lines.append(f"changed: {ch['id']} reworded as {ch['new_id']} (cosine {ch['similarity']})")
        else:
            lines.append(
                f"changed: {ch['id']} "
                + ", ".join(f"{k} {ch['before'][k]!r} -> {ch['after'][k]!r}" for k in ch["fields"])
            )
    if len(d["changed"]) > limit:
        lines.append(f"… and {len(d['changed']) - limit} more changed")
    return "\n".join(lines)

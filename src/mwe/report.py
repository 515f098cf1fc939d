"""`mwe report`: one HTML file to look at a dataset before trusting it.

Self-contained on purpose: plots are inline SVG drawn here and the table filter is a few lines of
inline script, so the file opens offline, attaches to an email and never fetches anything at view
time. Reports are written outside the immutable version directory.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .dataset import Dataset
from .errors import StoreError
from .items import Item, Rejection
from .manifest import STAGES, Manifest

__all__ = ["default_report_path", "render", "write_report"]

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
MAP_POINTS = 3000
TABLE_ROWS = 5000


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">' + "".join(body) + "</svg>"
    )


def hbars(
    rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], title: str, ref: float | None = None
) -> str:
    """Grouped horizontal bars: one group per row label, one bar per series; `ref` draws a
    dashed reference line (e.g. 0.5 for position balance)."""
    label_w, plot_w, bar_h = 190, 360, 14
    group_h = bar_h * len(series) + 10
    top = 24 + 16 * len(series)
    height = top + group_h * len(rows) + 24
    peak = max([v for _, vals in rows for v in vals] + [ref or 0, 1e-9])
    body = [f'<text x="0" y="14" class="t">{_e(title)}</text>']
    for k, name in enumerate(series):
        x, y = label_w, 32 + 16 * k
        body.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        body.append(f'<text x="{x + 14}" y="{y}" class="s">{_e(name)}</text>')
    for r, (label, vals) in enumerate(rows):
        y0 = top + r * group_h
        body.append(
            f'<text x="{label_w - 6}" y="{y0 + group_h / 2 + 2}" text-anchor="end" class="s">{_e(label[:30])}</text>'
        )
        for k, v in enumerate(vals):
            w = plot_w * v / peak
            y = y0 + k * bar_h
            fill = PALETTE[k % len(PALETTE)]
            body.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{fill}"/>')
            shown = f"{v:.2f}" if isinstance(v, float) and not float(v).is_integer() else f"{v:g}"
            body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" class="s">{shown}</text>')
    if ref is not None:
        rx = label_w + plot_w * ref / peak
        body.append(f'<line x1="{rx:.1f}" y1="{top - 4}" x2="{rx:.1f}" y2="{height - 20}" class="ref"/>')
    return _svg(label_w + plot_w + 60, height, body, title)


def histogram(kept: Sequence[float], rejected: Sequence[float], title: str) -> str:
    """Judge scores in ten bins of width 1, kept and rejected side by side."""
    bins = [[0] * 10, [0] * 10]
    for s, values in enumerate((kept, rejected)):
        for v in values:
            bins[s][min(9, max(0, int(v)))] += 1
    peak = max(max(bins[0]), max(bins[1]), 1)
    left, base, plot_h, col = 40, 200, 160, 44
    body = [f'<text x="0" y="14" class="t">{_e(title)}</text>']
    for s, name in enumerate(("kept", "rejected")):
        body.append(f'<rect x="{left + s * 90}" y="24" width="10" height="10" fill="{PALETTE[s]}"/>')
        body.append(f'<text x="{left + 14 + s * 90}" y="33" class="s">{name}</text>')
    for b in range(10):
        for s in range(2):
            h = plot_h * bins[s][b] / peak
            x = left + b * col + s * (col / 2 - 2)
            body.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{col / 2 - 4:.1f}" height="{h:.1f}" fill="{PALETTE[s]}"/>'
            )
            if bins[s][b]:
                body.append(f'<text x="{x:.1f}" y="{base - h - 3:.1f}" class="s">{bins[s][b]}</text>')
        body.append(f'<text x="{left + b * col + col / 2 - 8}" y="{base + 14}" class="s">{b}–{b + 1}</text>')
    body.append(f'<line x1="{left}" y1="{base}" x2="{left + 10 * col}" y2="{base}" class="axis"/>')
    return _svg(left + 10 * col + 20, base + 24, body, title)


def scatter(points: Sequence[tuple[float, float]], groups: Sequence[str], title: str) -> str:
    """A 2-D map, one colour per group, with a legend."""
    names = list(dict.fromkeys(groups))
    size, pad = 420, 16
    body = [f'<text x="0" y="14" class="t">{_e(title)}</text>']
    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
        for (x, y), g in zip(points, groups, strict=True):
            cx = pad + (size - 2 * pad) * (x - x0) / sx
            cy = 24 + pad + (size - 2 * pad) * (1 - (y - y0) / sy)
            colour = PALETTE[names.index(g) % len(PALETTE)]
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}" fill-opacity="0.75"/>')
    for k, name in enumerate(names):
        y = 40 + 18 * k
        body.append(f'<rect x="{size + 10}" y="{y - 9}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
        body.append(f'<text x="{size + 24}" y="{y}" class="s">{_e(name[:32])}</text>')
    return _svg(size + 230, size + 30, body, title)


def embedding_map(items: Sequence[Item]) -> tuple[list[tuple[float, float]], list[str]]:
    """TF-IDF vectors (the dedup embedder) reduced to two dimensions with truncated SVD; a
    seeded sample when the set is large, so the file stays small."""
    import random

    chosen = list(items)
    if len(chosen) > MAP_POINTS:
        chosen = random.Random(0).sample(chosen, MAP_POINTS)
    if len(chosen) < 3:
        return [], []
    from sklearn.decomposition import TruncatedSVD

    from .filters.dedup import vectorise

    x = vectorise([i.text for i in chosen])
    if x.shape[1] < 3:
        return [], []
    xy = TruncatedSVD(n_components=2, random_state=0).fit_transform(x)
    return [(float(a), float(b)) for a, b in xy], [i.facet for i in chosen]


def _funnel_rows(m: Manifest) -> list[tuple[str, list[float]]]:
    funnel = m.funnel
    left = float(funnel.generated)
    rows = [("generated", [left])]
    by_stage = funnel.rejected_by_stage
    for stage in [*STAGES, *(k for k in by_stage if k not in STAGES)]:
        if by_stage.get(stage):
            left -= by_stage[stage]
            rows.append((f"after {stage} (−{by_stage[stage]})", [left]))
    rows.append(("kept", [float(funnel.kept)]))
    return rows


def _balance_rows(items: Sequence[Item]) -> list[tuple[str, list[float]]]:
    at_a: Counter[str] = Counter()
    longer: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for i in items:
        if i.answer_matching_behavior is None or len(i.choices) < 2:
            continue
        total[i.facet] += 1
        at_a[i.facet] += i.answer_matching_behavior == "A"
        match = i.matching_choice or ""
        longer[i.facet] += all(len(match) > len(c) for c in i.choices if c != match)
    return [(f, [at_a[f] / total[f], longer[f] / total[f]]) for f in total]


def _option_html(item: Item | dict[str, Any]) -> str:
    if isinstance(item, Item):
        choices, key, rubric, statement = item.choices, item.answer_matching_behavior, item.rubric, item.statement
    else:
        choices, key = [item.get("matching", ""), *item.get("not_matching", [])], "A"
        rubric, statement = None, item.get("fields", {}).get("statement")
        if item.get("layout") == "rubric":
            rubric, choices = {"matching": choices[0], "not_matching": choices[1] if len(choices) > 1 else ""}, []
    parts = []
    if statement:
        parts.append(f'<div class="st">statement: {_e(statement)}</div>')
    for k, c in enumerate(choices):
        letter = "ABCDEFGH"[k]
        cls = ' class="m"' if letter == key else ""
        parts.append(f"<div{cls}>({letter}) {_e(c)}</div>")
    if rubric:
        parts.append(f'<div class="m">matching: {_e(rubric.get("matching", ""))}</div>')
        parts.append(f"<div>not matching: {_e(rubric.get('not_matching', ''))}</div>")
    return "".join(parts)


def _row(
    status: str, facet: str, fmt: str, stage: str, score: Any, id_: str, question: str, options: str, reason: str
) -> str:
    shown = f"{score:.2f}" if isinstance(score, int | float) else ""
    return (
        f'<tr data-status="{_e(status)}" data-facet="{_e(facet)}" data-stage="{_e(stage)}">'
        f"<td>{_e(status)}</td><td>{_e(facet)}</td><td>{_e(fmt)}</td><td>{_e(stage)}</td><td>{shown}</td>"
        f'<td class="id">{_e(id_)}</td><td><div>{_e(question)}</div>{options}</td><td>{_e(reason)}</td></tr>'
    )


def _table(items: Sequence[Item], rejected: Sequence[Rejection]) -> str:
    rows = [
        _row("kept", i.facet, i.format, "", i.scores.get("quality"), i.id, i.question, _option_html(i), "")
        for i in items[:TABLE_ROWS]
    ]
    for r in rejected[:TABLE_ROWS]:
        item = r.item or {}
        question = item.get("question", "") or (r.raw or "")[:400]
        rows.append(
            _row(
                "rejected",
                r.facet or "",
                str(item.get("format", "")),
                r.stage,
                r.scores.get("quality"),
                r.id or "",
                question,
                _option_html(item) if item else "",
                r.reason,
            )
        )
    return "".join(rows)


_SCRIPT = """
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll('#items tbody tr'));
  var q = document.getElementById('q'), st = document.getElementById('status'),
      fa = document.getElementById('facet'), sg = document.getElementById('stage'),
      shown = document.getElementById('shown');
  function apply() {
    var text = q.value.toLowerCase(), n = 0;
    rows.forEach(function (r) {
      var ok = (!st.value || r.dataset.status === st.value) && (!fa.value || r.dataset.facet === fa.value) &&
               (!sg.value || r.dataset.stage === sg.value) && (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
      r.hidden = !ok; if (ok) { n++; }
    });
    shown.textContent = n + ' of ' + rows.length + ' rows';
  }
  [q, st, fa, sg].forEach(function (el) { el.addEventListener('input', apply); });
  // report.html#status=rejected&stage=judge opens filtered, so a link can point at a view
  var given = new URLSearchParams(location.hash.slice(1));
  [['q', q], ['status', st], ['facet', fa], ['stage', sg]].forEach(function (p) {
    if (given.has(p[0])) { p[1].value = given.get(p[0]); }
  });
  apply();
  document.body.dataset.rows = String(rows.length);
})();
"""

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px} h2{font-size:17px;margin-top:28px} .fake{background:#fde2e1;padding:8px;border:1px solid #e15759}
.plots{display:flex;flex-wrap:wrap;gap:24px} .plots figure{margin:0;border:1px solid #ddd;padding:10px}
svg .t{font-weight:600;font-size:13px} svg .s{font-size:11px;fill:#333} svg .ref{stroke:#e15759;stroke-dasharray:4 3}
svg .axis{stroke:#888} table{border-collapse:collapse;width:100%;font-size:12.5px}
td,th{border-bottom:1px solid #e5e5e5;padding:4px 6px;vertical-align:top;text-align:left}
th{position:sticky;top:0;background:#f6f6f6} .id{font-family:monospace;font-size:11px} .m{font-weight:600;color:#2b6a2b}
.st{font-style:italic} .controls{display:flex;gap:10px;margin:10px 0;flex-wrap:wrap} dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
"""


def _diversity_line(d: dict[str, Any] | None) -> str:
    if not d or d.get("mean_pairwise_distance") is None:
        return "too few items to measure"
    c = d["clusters"]
    return (
        f"mean pairwise cosine distance {d['mean_pairwise_distance']} (over {d['sampled']} items); "
        f"{c['with_members']} of {c['k']} k-means clusters hold items, the largest {c['largest_share']:.0%}; "
        f"facet evenness {d['facets']['evenness']}"
    )


def _options(values: Sequence[str]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def render(ds: Dataset) -> str:
    """The report for `ds` as one HTML string."""
    m = ds.manifest
    items = list(ds)
    rejected = ds.rejected
    quotas = m.quotas
    counts = Counter(i.facet for i in items)
    facets = list(dict.fromkeys([*quotas, *counts]))
    kept_scores = [float(i.scores["quality"]) for i in items if isinstance(i.scores.get("quality"), int | float)]
    rej_scores = [float(r.scores["quality"]) for r in rejected if isinstance(r.scores.get("quality"), int | float)]
    points, groups = embedding_map(items)
    balance = _balance_rows(items)
    plots = [
        hbars(
            [(f, [counts.get(f, 0), quotas.get(f, 0)]) for f in facets], ["kept", "quota"], "Facet coverage vs quota"
        ),
        histogram(kept_scores, rej_scores, "Judge score (0–10)"),
        hbars(_funnel_rows(m), ["items"], "Rejection funnel"),
    ]
    if balance:
        plots.append(
            hbars(
                balance,
                ["matching answer at (A)", "matching option is the longest"],
                "Position and length balance",
                ref=0.5,
            )
        )
    plots.append(
        scatter(points, groups, "Items on a 2-D map (TF-IDF + SVD), by facet")
        if points
        else "<p>Too few items for a 2-D map.</p>"
    )
    table = _table(items, rejected)
    stages = sorted({r.stage for r in rejected})
    bal = m.balance
    facts = {
        "threat model": f"{m.threat_model} v{m.version}",
        "made": f"{m.created_at} with mwe {m.mwe_version}, seed {m.build.seed}",
        "generation model": m.models.generation.label,
        "judge": f"{m.models.judge.label} — {m.judge.method}, threshold {m.judge.threshold}",
        "items": f"{len(items)} kept of {m.build.n} asked; {len(rejected)} rejected",
        "balance": f"matching at (A) {bal.share_matching_at_A}, matching longer {bal.share_matching_longer}",
        "cost": f"${m.cost.total_usd:.4f}",
        "diversity": _diversity_line(m.diversity),
        "spec sha256": m.spec_hash[:16],
    }
    capped = (
        f"<p>The table shows the first {TABLE_ROWS} kept and {TABLE_ROWS} rejected items.</p>"
        if max(len(items), len(rejected)) > TABLE_ROWS
        else ""
    )
    fake = (
        '<p class="fake"><b>FAKE DATA</b>: made by the fake provider for tests and demos; not for measuring models.</p>'
        if m.fake
        else ""
    )
    title = f"mwe report — {m.threat_model} v{m.version}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>{fake}
<p>{_e(m.spec.get("definition", ""))}</p>
<dl>{"".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())}</dl>
<h2>Plots</h2>
<div class="plots">{"".join(f"<figure>{p}</figure>" for p in plots)}</div>
<h2>Items</h2>{capped}
<div class="controls">
<input id="q" type="search" placeholder="search text, id or reason" size="40" aria-label="search">
<select id="status" aria-label="status"><option value="">kept and rejected</option>{_options(["kept", "rejected"])}</select>
<select id="facet" aria-label="facet"><option value="">every facet</option>{_options(facets)}</select>
<select id="stage" aria-label="stage"><option value="">every stage</option>{_options(stages)}</select>
<span id="shown"></span></div>
<table id="items"><thead><tr><th>status</th><th>facet</th><th>format</th><th>stage</th><th>score</th><th>id</th>
<th>item (matching answer in bold)</th><th>reason</th></tr></thead>
<tbody>{table}</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


def default_report_path(ds: Dataset) -> Path:
    return Path("reports") / f"{ds.manifest.threat_model}-v{ds.manifest.version}.html"


def write_report(ds: Dataset, out: str | Path | None = None) -> Path:
    """Render and write the report (default reports/<name>-v<N>.html); returns its path."""
    path = Path(out) if out is not None else default_report_path(ds)
    ds.check_outside(path, "reports")
    page = render(ds)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise StoreError.of(exc, "cannot write the report", path, "choose another --out") from None
    return path

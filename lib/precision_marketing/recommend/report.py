"""The recommend run's report: metrics of ALS against the baselines, a metric-vs-k chart and a
few example customers with item titles.

Everything here works on bounded inputs the job has already reduced on the cluster: the metrics
list (models x k x metrics) and a handful of example customers.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from precision_marketing.recommend.evaluate import COVERAGE, METRICS, Metric

LABELS = {
    "precisionAtK": "precision@k",
    "recallAtK": "recall@k",
    "ndcgAtK": "NDCG@k",
    "meanAveragePrecisionAtK": "MAP@k",
    COVERAGE: "catalog coverage@k",
}


def metric_chart(metrics: Sequence[Metric]) -> bytes:
    """PNG: one panel per metric, one line per model, k on the x axis."""
    names = [*METRICS, COVERAGE]
    models = sorted({m.model for m in metrics})
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4))
    for ax, name in zip(axes, names, strict=True):
        for model in models:
            points = sorted(
                (m.k, m.value) for m in metrics if m.model == model and m.metric == name
            )
            if points:
                ks, values = zip(*points, strict=True)
                ax.plot(ks, values, marker="o", label=model)
        ax.set_title(LABELS[name])
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def metrics_table(metrics: Sequence[Metric]) -> str:
    """HTML table: one row per (model, k), one column per metric."""
    names = [*METRICS, COVERAGE]
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for m in metrics:
        cells.setdefault((m.model, m.k), {})[m.metric] = m.value
    head = "".join(f"<th>{LABELS[n]}</th>" for n in names)
    rows = []
    for (model, k), values in sorted(cells.items()):
        tds = "".join(f"<td>{values[n]:.4f}</td>" if n in values else "<td>-</td>" for n in names)
        rows.append(f"<tr><td>{html.escape(model)}</td><td>{k}</td>{tds}</tr>")
    return f"<table><tr><th>model</th><th>k</th>{head}</tr>{''.join(rows)}</table>"


def examples_table(examples: Sequence[dict[str, Any]]) -> str:
    """HTML: per example customer, what they interacted with and what they are recommended."""
    parts = []
    for ex in examples:
        history = ", ".join(html.escape(str(t)) for t in ex["history"]) or "(no history)"
        recs = "".join(
            f"<li>{r['rank']}. {html.escape(str(r['title']))} "
            f"<small>({html.escape(str(r['item_id']))}, {r['source']}, "
            f"{r['score']:.3f})</small></li>"
            for r in ex["recommendations"]
        )
        parts.append(
            f"<h3>{html.escape(str(ex['customer_id']))}</h3>"
            f"<p><b>recently:</b> {history}</p><ol style='list-style:none'>{recs}</ol>"
        )
    return "".join(parts)


def render(
    model_version: str,
    as_of: str,
    params: dict[str, Any],
    metrics: Sequence[Metric],
    examples: Sequence[dict[str, Any]],
    chart_file: str,
    facts: dict[str, float | None] | None = None,
) -> str:
    facts = facts or {}
    split = "leave-last-out" if facts.get("tuning_leave_last_out") else "time"
    judged = facts.get("tuning_customers_judged")
    judged_text = f", {int(judged):,} customers judged" if judged is not None else ""
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>recommend {html.escape(model_version)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>Recommendations {html.escape(model_version)}</h1>
<p>as of {html.escape(as_of)}; chosen ALS parameters: {html.escape(str(params))}</p>
<p>{html.escape(history_text(facts))}</p>
<p>{html.escape(blend_text(facts))}</p>
<h2>Blend, ALS and baselines side by side ({split} split{judged_text})</h2>
{metrics_table(metrics)}
<p><img src="{html.escape(chart_file)}" alt="metrics vs k"></p>
<h2>Examples</h2>{examples_table(examples)}
</body></html>"""


def history_text(facts: dict[str, float | None]) -> str:
    """The training window and what it left out, from the run's figures."""
    days = facts.get("history_window_days")
    if days is None:
        return "history: all data before the run date (nothing left out)"
    rows, dropped = facts.get("history_rows") or 0.0, facts.get("history_rows_dropped") or 0.0
    customers = facts.get("history_customers_dropped") or 0.0
    share = 100.0 * dropped / rows if rows else 0.0
    return (
        f"history: the last {int(days)} days; left out {int(dropped):,} of {int(rows):,} "
        f"signals ({share:.1f}%) and {int(customers):,} customers"
    )


def blend_text(facts: dict[str, float | None]) -> str:
    """What serves: the blend's weights chosen on the split, or ALS alone."""
    weights = {
        name.removeprefix("blend_weight_"): value
        for name, value in facts.items()
        if name.startswith("blend_weight_") and value is not None
    }
    if not weights:
        return "served: ALS alone (no blend tuned)"
    shown = ", ".join(f"{name} {value:.2f}" for name, value in weights.items())
    points = facts.get("blend_grid_points")
    grid = f" of {int(points)} grid points" if points else ""
    return f"served: the blend, weights chosen on the split{grid}: {shown}"

"""The recommend run's report on the shared page (precision_marketing.reports): metrics of the
served lists against the baselines, a metric-vs-k chart and a few example customers.

Everything here works on bounded inputs the job has already reduced on the cluster: the metrics
list (models x k x metrics) and a handful of example customers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt

from precision_marketing import reports
from precision_marketing.recommend.evaluate import COVERAGE, METRICS, Metric

LABELS = {
    "precisionAtK": "precision@k",
    "recallAtK": "recall@k",
    "ndcgAtK": "NDCG@k",
    "meanAveragePrecisionAtK": "MAP@k",
    COVERAGE: "catalog coverage@k",
}
CHART = "metrics_vs_k.png"


def metric_chart(metrics: Sequence[Metric]) -> bytes:
    """PNG: one panel per metric, one line per model, k on the x axis."""
    names = [*METRICS, COVERAGE]
    models = sorted({m.model for m in metrics})
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
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
        ax.set_xticks(sorted({m.k for m in metrics}))
        ax.grid(alpha=0.3)
    # Beside the last panel, where it hides no line.
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return reports.png(fig)


def metrics_table(metrics: Sequence[Metric]) -> reports.Table:
    """One row per (model, k), one column per metric (empty where a model lacks one)."""
    names = [*METRICS, COVERAGE]
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for m in metrics:
        cells.setdefault((m.model, m.k), {})[m.metric] = m.value
    return reports.Table(
        ["model", "k", *(LABELS[n] for n in names)],
        [
            [model, k, *(values.get(n) for n in names)]
            for (model, k), values in sorted(cells.items())
        ],
    )


def example(ex: Mapping[str, Any]) -> reports.Example:
    """One customer: what they interacted with lately and their served list."""
    return reports.Example(
        str(ex["customer_id"]),
        "recently: " + (", ".join(str(t) for t in ex["history"]) or "(no history)"),
        [
            f"{r['rank']}. {r['title']} ({r['item_id']}, {r['source']}, {r['score']:.3f})"
            for r in ex["recommendations"]
        ],
    )


def page(
    model_version: str,
    as_of: str,
    params: Mapping[str, Any],
    metrics: Sequence[Metric],
    examples: Sequence[Mapping[str, Any]],
    facts: Mapping[str, float | None],
) -> reports.Page:
    split = "leave-last-out" if facts.get("tuning_leave_last_out") else "time"
    judged = facts.get("tuning_customers_judged")
    judged_text = f", {int(judged):,} customers judged" if judged is not None else ""
    return reports.Page(
        f"Recommendations {model_version}",
        {
            "as of": as_of,
            "chosen ALS parameters": ", ".join(f"{k} {v}" for k, v in params.items()),
            "history": history_text(facts),
            "served": blend_text(facts),
        },
        [
            reports.Section(
                f"Blend, ALS and baselines side by side ({split} split{judged_text})",
                tables=[metrics_table(metrics)],
                figures=[reports.Figure(CHART, "Metrics by k", metric_chart(metrics))],
            ),
            reports.Section("Examples", examples=[example(ex) for ex in examples]),
        ],
    )


def history_text(facts: Mapping[str, float | None]) -> str:
    """The training window and what it left out, from the run's figures."""
    days = facts.get("history_window_days")
    if days is None:
        return "all data before the run date (nothing left out)"
    rows, dropped = facts.get("history_rows") or 0.0, facts.get("history_rows_dropped") or 0.0
    customers = facts.get("history_customers_dropped") or 0.0
    share = 100.0 * dropped / rows if rows else 0.0
    return (
        f"the last {int(days)} days; left out {int(dropped):,} of {int(rows):,} "
        f"signals ({share:.1f}%) and {int(customers):,} customers"
    )


def blend_text(facts: Mapping[str, float | None]) -> str:
    """What serves: the blend's weights chosen on the split, or ALS alone."""
    weights = {
        name.removeprefix("blend_weight_"): value
        for name, value in facts.items()
        if name.startswith("blend_weight_") and value is not None
    }
    if not weights:
        return "ALS alone (no blend tuned)"
    shown = ", ".join(f"{name} {value:.2f}" for name, value in weights.items())
    points = facts.get("blend_grid_points")
    grid = f" of {int(points)} grid points" if points else ""
    return f"the blend, weights chosen on the split{grid}: {shown}"

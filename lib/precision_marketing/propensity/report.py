"""The propensity run's report: ROC and PR curves, gains and lift, calibration, coefficients,
and the metric tables, as PNG charts and one HTML page.

Everything here is drawn from bounded inputs the job has already reduced on the cluster:
decile tables, curve buckets (propensity.curve_points per model), metrics and coefficients.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on a cluster node or in CI
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from precision_marketing.propensity.evaluate import CurvePoint, DecileRow


@dataclass(frozen=True)
class Evaluated:
    """One ranking model on the validation snapshot."""

    name: str
    metrics: dict[str, float]
    deciles: list[DecileRow]
    curve: list[CurvePoint]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def curves_chart(models: Sequence[Evaluated]) -> bytes:
    """ROC and precision-recall curves, one line per model, AUCs in the legend."""
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.2))
    for m in models:
        roc.plot(
            [p.fpr for p in m.curve], [p.tpr for p in m.curve],
            label=f"{m.name} (AUC {m.metrics['roc_auc']:.3f})",
        )  # fmt: skip
        pr.plot(
            [p.tpr for p in m.curve[1:]], [p.precision for p in m.curve[1:]],
            label=f"{m.name} (AUC {m.metrics['pr_auc']:.3f})",
        )  # fmt: skip
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    if models:
        pr.axhline(models[0].metrics["base_rate"], color="grey", linestyle=":", label="base rate")
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    for ax in (roc, pr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def gains_chart(models: Sequence[Evaluated]) -> bytes:
    """Cumulative gains and lift by decile (1 = the highest scores)."""
    fig, (gain, lift) = plt.subplots(1, 2, figsize=(10, 4.2))
    for m in models:
        deciles = [r.decile for r in m.deciles]
        gain.plot([0, *deciles], [0.0, *(r.cumulative_gain for r in m.deciles)], marker="o",
                  label=m.name)  # fmt: skip
        lift.plot(deciles, [r.lift for r in m.deciles], marker="o", label=m.name)
    gain.plot([0, 10], [0, 1], color="grey", linestyle=":", label="random")
    gain.set(xlabel="decile", ylabel="share of buyers reached", title="Cumulative gains")
    lift.axhline(1.0, color="grey", linestyle=":")
    lift.set(xlabel="decile", ylabel="buy rate / overall rate", title="Lift by decile")
    for ax in (gain, lift):
        ax.set_xticks(range(0, 11))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def calibration_chart(models: Sequence[Evaluated]) -> bytes:
    """Mean predicted probability against the observed buy rate, per decile."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for m in models:
        points = [(r.mean_predicted, r.observed_rate) for r in m.deciles
                  if r.mean_predicted is not None]  # fmt: skip
        ax.plot([p for p, _ in points], [o for _, o in points], marker="o",
                label=f"{m.name} (ECE {m.metrics.get('ece', float('nan')):.3f})")  # fmt: skip
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def coefficients_chart(coefficients: Sequence[tuple[str, float]], top: int = 25) -> bytes:
    """The largest standardized coefficients (change in log-odds per standard deviation)."""
    shown = list(coefficients[:top])[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.4))
    ax.barh(
        [name for name, _ in shown], [value for _, value in shown],
        color=["#4C72B0" if value >= 0 else "#C44E52" for _, value in shown],
    )  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="log-odds per standard deviation", title="Standardized coefficients")
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


CHARTS = {
    "curves.png": "ROC and precision-recall curves",
    "gains_lift.png": "Cumulative gains and lift",
    "calibration.png": "Calibration by decile",
    "coefficients.png": "Standardized coefficients",
}


def charts(
    models: Sequence[Evaluated], coefficients: Sequence[tuple[str, float]]
) -> dict[str, bytes]:
    return {
        "curves.png": curves_chart(models),
        "gains_lift.png": gains_chart(models),
        "calibration.png": calibration_chart(models),
        "coefficients.png": coefficients_chart(coefficients),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}"
    return html.escape(str(value))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def render(
    title: str,
    facts: Mapping[str, str],
    models: Sequence[Evaluated],
    extra_metrics: Mapping[str, Mapping[str, float]],
    grid: Sequence[Mapping[str, Any]],
    coefficients: Sequence[tuple[str, float]],
) -> str:
    names = sorted({k for m in models for k in m.metrics})
    summary = _table(["model", *names], [[m.name, *(m.metrics.get(n, "") for n in names)]
                                         for m in models])  # fmt: skip
    decile_head = ["model", "decile", "customers", "buyers", "mean predicted", "observed rate",
                   "lift", "cumulative gain", "cumulative lift"]  # fmt: skip
    decile_rows = [
        [m.name, r.decile, r.customers, r.positives,
         "" if r.mean_predicted is None else r.mean_predicted, r.observed_rate, r.lift,
         r.cumulative_gain, r.cumulative_lift]
        for m in models for r in m.deciles
    ]  # fmt: skip
    extra_names = sorted({k for v in extra_metrics.values() for k in v})
    extra = _table(
        ["model", *extra_names],
        [
            [name, *(values.get(k, "") for k in extra_names)]
            for name, values in extra_metrics.items()
        ],
    )
    grid_table = _table(list(grid[0]) if grid else [], [list(g.values()) for g in grid])
    coef_table = _table(["feature", "standardized coefficient"], [list(c) for c in coefficients])
    facts_table = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items()
    )
    images = "".join(
        f'<figure><img src="{name}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(alt)}</figcaption></figure>"
        for name, alt in CHARTS.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}img{{max-width:100%}}
figure{{display:inline-block;margin:1em;vertical-align:top}}</style></head>
<body><h1>{html.escape(title)}</h1>
<table>{facts_table}</table>
<h2>Model vs recency baseline (validation snapshot)</h2>{summary}
<p>AUCs rank by the model's score; log loss, Brier and calibration use probabilities
calibrated out of fold (each half of the validation customers by a calibrator fitted on the
other half).</p>
{images}
<h2>Deciles</h2>{_table(decile_head, decile_rows)}
<h2>Spend and churn</h2>{extra}
<h2>Tuning grid (TrainValidationSplit)</h2>{grid_table}
<h2>Coefficients</h2>{coef_table}
</body></html>
"""

"""The propensity run's report: ROC and PR curves, gains and lift, calibration, coefficients,
and the metric tables, as PNG charts and one HTML page.

Everything here is drawn from bounded inputs the job has already reduced on the cluster:
decile tables, curve buckets (propensity.curve_points per model), metrics and coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt

from precision_marketing import reports
from precision_marketing.propensity.evaluate import CurvePoint, DecileRow


@dataclass(frozen=True)
class Evaluated:
    """One ranking model on the validation snapshot."""

    name: str
    metrics: dict[str, float]
    deciles: list[DecileRow]
    curve: list[CurvePoint]


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
    return reports.png(fig)


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
    return reports.png(fig)


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
    return reports.png(fig)


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
    return reports.png(fig)


def render(
    title: str,
    facts: Mapping[str, str],
    models: Sequence[Evaluated],
    extra_metrics: Mapping[str, Mapping[str, float]],
    grid: Sequence[Mapping[str, Any]],
    coefficients: Sequence[tuple[str, float]],
) -> reports.Page:
    names = sorted({k for m in models for k in m.metrics})
    summary = reports.Table(
        ["model", *names], [[m.name, *(m.metrics.get(n) for n in names)] for m in models]
    )
    deciles = reports.Table(
        ["model", "decile", "customers", "buyers", "mean predicted", "observed rate", "lift",
         "cumulative gain", "cumulative lift"],
        [
            [m.name, r.decile, r.customers, r.positives, r.mean_predicted, r.observed_rate,
             r.lift, r.cumulative_gain, r.cumulative_lift]
            for m in models for r in m.deciles
        ],
    )  # fmt: skip
    extra_names = sorted({k for v in extra_metrics.values() for k in v})
    extra = reports.Table(
        ["model", *extra_names],
        [[name, *(v.get(k) for k in extra_names)] for name, v in extra_metrics.items()],
    )
    grid_table = reports.Table(list(grid[0]) if grid else [], [list(g.values()) for g in grid])
    coefficient_table = reports.Table(
        ["feature", "standardized coefficient"], [list(c) for c in coefficients]
    )
    figures = [
        reports.Figure("curves.png", "ROC and precision-recall curves", curves_chart(models)),
        reports.Figure("gains_lift.png", "Cumulative gains and lift", gains_chart(models)),
        reports.Figure("calibration.png", "Calibration by decile", calibration_chart(models)),
        reports.Figure(
            "coefficients.png", "Standardized coefficients", coefficients_chart(coefficients)
        ),
    ]
    return reports.Page(
        title,
        facts,
        [
            reports.Section(
                "Model vs recency baseline (validation snapshot)",
                paragraphs=[
                    "AUCs rank by the model's score; log loss, Brier and calibration use "
                    "probabilities calibrated out of fold (each half of the validation customers "
                    "by a calibrator fitted on the other half)."
                ],
                tables=[summary],
                figures=figures,
            ),
            reports.Section("Deciles", tables=[deciles]),
            reports.Section(
                "Candidates, calibration snapshot, spend and churn",
                paragraphs=[
                    "logistic and gbt: each candidate's ranking on the validation snapshot "
                    "(chosen = 1 serves); calibration: the latest snapshot whose label window "
                    "has ended, where the serving model's calibrator is fitted."
                ],
                tables=[extra],
            ),
            reports.Section(
                "Tuning grid of the logistic model (TrainValidationSplit)", tables=[grid_table]
            ),
            reports.Section("Coefficients of the logistic model", tables=[coefficient_table]),
        ],
    )

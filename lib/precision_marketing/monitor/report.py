"""The monitor run's report: trends of realized quality over scoring dates, drift per input,
calibration of the latest matured propensity scoring, and every figure in tables.

Drawn from the run's rows of gold/model_monitoring only (a few per scoring date and feature).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from pyspark.sql import SparkSession

from precision_marketing import models, reports
from precision_marketing.config import MonitorConfig
from precision_marketing.monitor.transforms import OK, Row, worst

# Realized figures drawn as trends: (model, metrics on one chart, y label).
TRENDS = (
    ("propensity", ("roc_auc", "pr_auc"), "area under the curve"),
    ("propensity", ("top_decile_lift",), "top-decile buy rate / overall"),
    ("recommend", ("hit_rate", "recall_at_", "ndcg_at_"), "share / score"),
    ("segment", ("migration_rate",), "share of customers changing segment"),
)
DRIFT = ("psi", "null_share_increase")
MARKERS = ("o", "s", "^", "D")  # equal values of two figures stay visible
STATUS_COLOURS = {"ok": "#4C72B0", "warn": "#DD8452", "refit": "#C44E52"}


def _matches(metric: str, names: Sequence[str]) -> str | None:
    return next((n for n in names if metric == n or (n.endswith("_") and metric.startswith(n))),
                None)  # fmt: skip


def trend_chart(rows: Sequence[Row]) -> bytes | None:
    """One panel per TRENDS entry with data: the figure over scoring dates."""
    panels = []
    for model, names, label in TRENDS:
        series: dict[str, list[tuple[date, float]]] = {}
        for r in rows:
            if (
                r.model == model
                and r.scored_as_of
                and r.value is not None
                and _matches(r.metric, names)
            ):
                series.setdefault(r.metric, []).append((r.scored_as_of, r.value))
        if series:
            panels.append((model, label, series))
    if not panels:
        return None
    dates = sorted({d for _, _, series in panels for points in series.values() for d, _ in points})
    # A few days of margin: one scoring date alone would otherwise span years of axis.
    margin = max(timedelta(days=2), (dates[-1] - dates[0]) / 20)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.0 * len(panels)), squeeze=False)
    for ax, (model, label, series) in zip(axes[:, 0], panels, strict=True):
        for (metric, points), marker in zip(sorted(series.items()), MARKERS, strict=False):
            points.sort()
            ax.plot([d for d, _ in points], [v for _, v in points], marker=marker, label=metric,
                    markersize=8, markerfacecolor="none")  # fmt: skip
        values = [v for points in series.values() for _, v in points]
        # Shares and AUCs live in [0, 1]; lift from 0 up, 1 (no better than random) in view.
        ax.set_ylim(0, max(1.0, max(values)) * 1.08)
        ax.set_xlim(dates[0] - margin, dates[-1] + margin)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.set(title=f"{model}: realized, by scoring date", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    return reports.png(fig)


def drift_chart(rows: Sequence[Row], cfg: MonitorConfig) -> bytes | None:
    """PSI per input of each model, coloured by status, with the two thresholds."""
    models = sorted({r.model for r in rows if r.metric == "psi"})
    if not models:
        return None
    heights = [max(1, sum(r.model == m and r.metric == "psi" for r in rows)) for m in models]
    fig, axes = plt.subplots(
        len(models), 1, figsize=(8, 0.3 * sum(heights) + 1.6 * len(models)),
        gridspec_kw={"height_ratios": heights}, squeeze=False,
    )  # fmt: skip
    for ax, model in zip(axes[:, 0], models, strict=True):
        mine = sorted((r for r in rows if r.model == model and r.metric == "psi"),
                      key=lambda r: r.feature or "", reverse=True)  # fmt: skip
        ax.barh(
            [r.feature or "" for r in mine], [r.value or 0.0 for r in mine],
            color=[STATUS_COLOURS[r.status] for r in mine],
        )  # fmt: skip
        ax.axvline(cfg.psi_warn, color=STATUS_COLOURS["warn"], linestyle="--", zorder=3,
                   label=f"warn {cfg.psi_warn}")  # fmt: skip
        ax.axvline(cfg.psi_refit, color="black", linestyle="--", zorder=3,
                   label=f"refit {cfg.psi_refit}")  # fmt: skip
        ax.set(title=f"{model}: PSI, training snapshot vs run date", xlabel="PSI")
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return reports.png(fig)


def calibration_chart(
    rows: Sequence[Row],
) -> tuple[bytes, date, list[tuple[str, float, float]]] | None:
    """Mean predicted against observed buy rate per decile, latest matured scoring."""
    dates = [r.scored_as_of for r in rows if r.metric.startswith("observed_rate_d")]
    latest = max((d for d in dates if d), default=None)
    if latest is None:
        return None
    at = {r.metric: r.value for r in rows if r.model == "propensity" and r.scored_as_of == latest}
    deciles = sorted(m.removeprefix("observed_rate_d") for m in at if m.startswith("observed_"))
    points = [(d, at.get(f"mean_predicted_d{d}"), at[f"observed_rate_d{d}"]) for d in deciles]
    shown = [(d, p, o) for d, p, o in points if p is not None and o is not None]
    fig, ax = plt.subplots(figsize=(5.2, 5))
    ax.scatter([p for _, p, _ in shown], [o for _, _, o in shown], label="deciles")
    for decile, predicted, observed in shown:
        ax.annotate(str(int(decile)), (predicted, observed), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)  # fmt: skip
    top = max([0.05, *(v for _, p, o in shown for v in (p, o))]) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle=":", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed buy rate",
           title=f"Calibration of the {latest} scoring (labels: decile)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return reports.png(fig), latest, shown


def page(run_date: date, run_id: str, rows: Sequence[Row], unmeasured: Sequence[str],
         cfg: MonitorConfig) -> reports.Page:  # fmt: skip
    flagged = [r for r in rows if r.status != OK and r.metric != "model_status"]
    statuses = {r.model: r.status for r in rows if r.metric == "model_status"}
    facts = {
        "run date": run_date.isoformat(),
        "models": ", ".join(f"{m}: {s}" for m, s in sorted(statuses.items())) or "none",
        "figures flagged": str(len(flagged)),
        "thresholds": f"PSI warn {cfg.psi_warn} / refit {cfg.psi_refit}; null share warn "
        f"+{cfg.null_share_warn} / refit +{cfg.null_share_refit}; ROC AUC below "
        f"{cfg.min_roc_auc}; migration above {cfg.migration_warn}",
        "run id": run_id,
    }
    realized = [r for r in rows if r.metric not in DRIFT and r.metric != "model_status"]
    trend = trend_chart(realized)
    sections = [
        reports.Section(
            "Realized quality of past scorings",
            paragraphs=[f"Not measured: {u}." for u in unmeasured]
            or ["Every model with a matured scoring was measured."],
            figures=[reports.Figure("trends.png", "Realized figures by scoring date", trend)]
            if trend
            else [],
            tables=[
                _by_scoring(model, [r for r in realized if r.model == model])
                for model in sorted({r.model for r in realized})
            ],
        )
    ]
    calibration = calibration_chart(realized)
    if calibration:
        png, latest, shown = calibration
        deciles = reports.Table(
            ["decile", "mean predicted", "observed rate"],
            [[int(d), p, o] for d, p, o in shown],
        )
        sections.append(
            reports.Section(
                "Propensity calibration",
                figures=[reports.Figure("calibration.png", f"Deciles of {latest}", png)],
                tables=[deciles],
            )
        )
    drifted = [r for r in rows if r.metric in DRIFT]
    drift = drift_chart(drifted, cfg)
    fitted_today = sorted(
        {f"{r.model} ({r.model_version})" for r in drifted if r.model_version
         and models.as_of_of(r.model_version) == run_date}
    )  # fmt: skip
    notes = [
        f"PSI over {cfg.psi_bins} quantile bins of the training snapshot (an empty bin counts "
        f"as {cfg.psi_epsilon}); nulls are left out of the bins and followed as the increase "
        "in their share."
    ]
    if fitted_today:
        notes.append(
            "Fitted on the run date's own snapshot, so no drift yet by construction: "
            + ", ".join(fitted_today)
            + "."
        )
    sections.append(
        reports.Section(
            "Input drift: training snapshot vs run date",
            paragraphs=notes,
            figures=[reports.Figure("drift.png", "PSI per model input", drift)] if drift else [],
            tables=[_drift_table(drifted)],
        )
    )
    return reports.Page(f"Model monitoring, {run_date.isoformat()}", facts, sections)


def _drift_table(rows: Sequence[Row]) -> reports.Table:
    """One row per model input: PSI and null-share increase, each with its status."""
    keys = sorted({(r.model, r.model_version, r.feature or "") for r in rows})
    found = {(r.model, r.model_version, r.feature or "", r.metric): r for r in rows}
    body = []
    for model, version, feature in keys:
        psi = found.get((model, version, feature, "psi"))
        nulls = found.get((model, version, feature, "null_share_increase"))
        body.append(
            [model, version, feature,
             psi.value if psi else None, psi.status if psi else "",
             nulls.value if nulls else None, nulls.status if nulls else ""]
        )  # fmt: skip
    head = ["model", "model version", "feature", "PSI", "PSI status", "null share increase",
            "null status"]  # fmt: skip
    return reports.Table(head, body)


def _is_decile(metric: str) -> bool:
    return metric.startswith(("mean_predicted_d", "observed_rate_d"))


def _by_scoring(model: str, rows: Sequence[Row]) -> reports.Table:
    """One row per scoring date of `model`, its figures as columns, the worst status last."""
    metrics = sorted({r.metric for r in rows if not _is_decile(r.metric)})
    scorings = sorted(
        {(r.scored_as_of, r.model_version) for r in rows},
        key=lambda s: (s[0] or date.min, s[1] or ""),
    )
    body = []
    for scored, version in scorings:
        mine = [r for r in rows if (r.scored_as_of, r.model_version) == (scored, version)]
        value = {r.metric: r.value for r in mine}
        body.append(
            [
                model,
                version,
                scored,
                *(value.get(m) for m in metrics),
                worst([r.status for r in mine]),
            ]
        )
    return reports.Table(["model", "model version", "scored as of", *metrics, "status"], body)


def write(spark: SparkSession, folder: str, page: reports.Page) -> str:
    return reports.write(spark, folder, page)

"""The few lines a pipeline run ends with: step outcomes, rows per table, key metrics, reports.

Table-driven: OUTPUTS says which tables each step writes and how to count them, METRICS how to
read each step's headline numbers. Counting stays cheap: whole tables are counted from the Delta
log's file statistics, snapshots by a filter on their partition column. Anything absent (a stage
not configured, a metrics table of another shape) is left out, never an error: the summary must
not fail a run whose stages all succeeded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import PurePosixPath

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import registry, requirements
from precision_marketing.config import Config
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.pipeline import RUNS, Outcome, Status
from precision_marketing.runtime import JobContext
from precision_marketing.segment import job as segments_job

log = logging.getLogger(__name__)

# Columns that name the snapshot a row belongs to, in the order they are looked for.
SNAPSHOT_COLUMNS = ("as_of_date", "run_date")


class Count(StrEnum):
    TOTAL = "total"  # every row (bronze and silver keep history, not snapshots)
    RUN_DATE = "run date"  # the run date's snapshot (gold, activation)


@dataclass(frozen=True)
class Output:
    step: str
    layer: Layer
    table: str
    count: Count = Count.RUN_DATE


SOURCES = requirements.SOURCES
OUTPUTS: tuple[Output, ...] = (
    *(Output("ingest", Layer.BRONZE, t, Count.TOTAL) for t in SOURCES),
    *(Output("validate", Layer.QUARANTINE, t, Count.TOTAL) for t in SOURCES),
    *(
        Output("silver", Layer.SILVER, t, Count.TOTAL)
        for t in ("events", "customers", "customer_history", "order_lines", "items")
    ),
    Output("features", Layer.GOLD, "user_features"),
    Output("segment", Layer.GOLD, "segments"),
    Output("segment", Layer.GOLD, "segment_profiles"),
    Output("recommend", Layer.GOLD, "recommendations"),
    Output("recommend", Layer.GOLD, "similar_items"),
    Output("recommend", Layer.GOLD, "rules"),
    Output("propensity", Layer.GOLD, "propensity"),
    Output("publish", Layer.ACTIVATION, "audiences"),
    Output("publish", Layer.ACTIVATION, "campaign_runs"),
    Output("measure", Layer.GOLD, "campaign_results"),
    Output("monitor", Layer.GOLD, "model_monitoring"),
)


def snapshot_column(df: DataFrame) -> str | None:
    return next((c for c in SNAPSHOT_COLUMNS if c in df.columns), None)


def at_run_date(df: DataFrame, run_date: date) -> DataFrame:
    """The run date's rows when the table has a snapshot column, else the whole table."""
    column = snapshot_column(df)
    return df if column is None else df.where(F.col(column) == F.lit(run_date))


def count_rows(spark: SparkSession, config: Config, output: Output, run_date: date) -> int | None:
    path = tables.table_path(config, output.layer, output.table)
    if not tables.is_delta(spark, path):
        return None
    df = tables.read(spark, path)
    if output.count is Count.RUN_DATE:
        df = at_run_date(df, run_date)
    return df.count()


# ------------------------------------------------------------------------------------------
# Key metrics: one small reader per step, each returning display lines (bounded reads only).

Metric = Callable[[SparkSession, Config, date], list[str]]


def _table(spark: SparkSession, config: Config, layer: Layer, name: str) -> DataFrame | None:
    path = tables.table_path(config, layer, name)
    return tables.read(spark, path) if tables.is_delta(spark, path) else None


def segment_metrics(spark: SparkSession, config: Config, run_date: date) -> list[str]:
    # The version that assigned the run date: between refits, an earlier one.
    version = registry.served_version(spark, config, "segment", run_date) or (
        segments_job.model_version(config.segment, run_date)
    )
    path = f"{segments_job.model_dir(config, version)}/metadata.json"
    if not files.exists(spark, path):
        return []
    row = spark.read.text(path, wholetext=True).first()
    assert row is not None
    meta = json.loads(row[0])
    return [f"k={meta['params']['k']}, silhouette {meta['metrics']['silhouette']:.3f}"]


def recommend_metrics(spark: SparkSession, config: Config, run_date: date) -> list[str]:
    metrics = _table(spark, config, Layer.OPS, "recommend_metrics")
    if metrics is None:
        return []
    rows = (
        metrics.where(
            (F.col("as_of_date") == F.lit(run_date))
            & F.col("chosen")
            & (F.col("metric") == "ndcgAtK")
        )
        .select("model", "k", "value")
        .collect()  # bounded: models x k
    )
    if not rows:
        return []
    ks = {int(r["k"]) for r in rows}
    k = 10 if 10 in ks else max(ks)
    values = {r["model"]: float(r["value"]) for r in rows if r["k"] == k}
    shown = ", ".join(f"{m} {v:.4f}" for m, v in sorted(values.items(), key=_als_first))
    return [f"NDCG@{k}: {shown}"]


def _als_first(item: tuple[str, float]) -> tuple[bool, str]:
    return (item[0] != "als", item[0])


AUC_NAMES = ("auc", "roc_auc", "areaunderroc", "auc_roc")


def propensity_metrics(spark: SparkSession, config: Config, run_date: date) -> list[str]:
    metrics = _table(spark, config, Layer.OPS, "propensity_metrics")
    if metrics is None or "metric" not in metrics.columns or "value" not in metrics.columns:
        return []
    auc = at_run_date(metrics, run_date).where(F.lower("metric").isin(*AUC_NAMES))
    model = F.col("model") if "model" in metrics.columns else F.lit("model")
    split = F.col("split") if "split" in metrics.columns else F.lit(None)
    rows = auc.select(model.alias("model"), split.alias("split"), "value").collect()  # few rows
    return [
        f"AUC {r['model']}{f' ({r.split})' if r['split'] else ''}: {float(r['value']):.3f}"
        for r in sorted(rows, key=lambda r: (str(r["model"]), str(r["split"])))
    ]


def _campaign_column(df: DataFrame) -> str | None:
    return next((c for c in ("campaign_id", "campaign") if c in df.columns), None)


# activation/campaign_runs columns shown per campaign.
AUDIENCE_SIZES = ("treatment_size", "control_size", "excluded_size")


def publish_metrics(spark: SparkSession, config: Config, run_date: date) -> list[str]:
    runs = _table(spark, config, Layer.ACTIVATION, "campaign_runs")
    if runs is None or "campaign_id" not in runs.columns:
        return []
    sizes = [c for c in AUDIENCE_SIZES if c in runs.columns]
    rows = at_run_date(runs, run_date).select("campaign_id", *sizes).collect()  # per campaign
    return [
        f"{r['campaign_id']}: " + ", ".join(f"{c.removesuffix('_size')} {r[c]:,}" for c in sizes)
        for r in sorted(rows, key=lambda r: str(r["campaign_id"]))
    ]


def measure_metrics(spark: SparkSession, config: Config, run_date: date) -> list[str]:
    """Uplift per measured campaign: the overall rows of gold/campaign_results."""
    results = _table(spark, config, Layer.GOLD, "campaign_results")
    if results is None:
        return []
    overall = (
        at_run_date(results, run_date)
        .where(F.col("breakdown") == "overall")
        .select(
            "campaign_id",
            "treatment_customers",
            "control_customers",
            "conversion_uplift",
            "conversion_uplift_ci_low",
            "conversion_uplift_ci_high",
            "conversion_p_value",
            "incremental_revenue",
            "roi",
        )
        .collect()  # one row per measured campaign
    )
    return [
        f"{r['campaign_id']}: uplift {_fmt(r['conversion_uplift'], PP)} "
        f"[{_fmt(r['conversion_uplift_ci_low'], PP)}, {_fmt(r['conversion_uplift_ci_high'], PP)}]"
        f" p={_fmt(r['conversion_p_value'], '{:.3g}')} "
        f"(treatment {r['treatment_customers']:,}, control {r['control_customers']:,}), "
        f"incremental revenue {_fmt(r['incremental_revenue'], '{:,.2f}')}, "
        f"ROI {_fmt(r['roi'], '{:.2f}')}"
        for r in sorted(overall, key=lambda r: str(r["campaign_id"]))
    ]


# gold/model_monitoring figures shown per model, latest scoring date first measured.
MONITOR_SHOWN = {
    "propensity": ("roc_auc", "top_decile_lift", "calibration_error"),
    "recommend": ("hit_rate", "recall_at_", "ndcg_at_"),
    "segment": ("migration_rate",),
}


def monitor_metrics(spark: SparkSession, config: Config, run_date: date) -> list[str]:
    """Per model: its status, the latest realized figures and the largest input drift."""
    monitoring = _table(spark, config, Layer.GOLD, "model_monitoring")
    if monitoring is None:
        return []
    rows = (
        at_run_date(monitoring, run_date)
        .where(F.col("metric") != F.lit("base_rate"))
        .select("model", "scored_as_of", "metric", "feature", "value", "status")
        .where(~F.col("metric").rlike("_d[0-9]+$"))  # per-decile calibration rows
        .collect()  # a few figures per model and scoring date, one pair per input
    )
    lines = []
    for model, shown in MONITOR_SHOWN.items():
        mine = [r for r in rows if r["model"] == model]
        status = next((r["status"] for r in mine if r["metric"] == "model_status"), None)
        if status is None:
            continue
        realized = [r for r in mine if r["metric"].startswith(shown) and r["value"] is not None]
        latest = max((r["scored_as_of"] for r in realized), default=None)
        parts = [
            f"{r['metric']} {r['value']:.3f}"
            for r in sorted(realized, key=lambda r: r["metric"])
            if r["scored_as_of"] == latest
        ]
        text = f"{status}; " + (f"scored {latest}: " + ", ".join(parts) if parts else "")
        psi = [r for r in mine if r["metric"] == "psi" and r["value"] is not None]
        if psi:
            top = max(psi, key=lambda r: r["value"])
            text += ("; " if parts else "") + f"max PSI {top['value']:.3f} ({top['feature']})"
        lines.append(f"{model}: {text.rstrip('; ')}")
    return lines


PP = "{:+.2%}"  # a difference of rates, shown in percent


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else spec.format(value)


METRICS: dict[str, Metric] = {
    "segment": segment_metrics,
    "recommend": recommend_metrics,
    "propensity": propensity_metrics,
    "publish": publish_metrics,
    "measure": measure_metrics,
    "monitor": monitor_metrics,
}


# ------------------------------------------------------------------------------------------
# Reports: reports/<step>/<run id or run date>/.../index.html of the attempt each step last
# succeeded in (a resumed run's earlier steps wrote theirs under the earlier attempt's id).


def succeeded_run_ids(spark: SparkSession, config: Config, run_date: date) -> dict[str, str]:
    runs = _table(spark, config, Layer.OPS, RUNS)
    if runs is None:
        return {}
    latest = (
        runs.where((F.col("run_date") == F.lit(run_date)) & (F.col("status") == Status.SUCCEEDED))
        .groupBy("step")
        .agg(F.max_by("pipeline_run_id", "finished_at").alias("pipeline_run_id"))
        .collect()  # one row per step
    )
    return {r["step"]: r["pipeline_run_id"] for r in latest}


def report_pages(
    spark: SparkSession, config: Config, steps: Sequence[str], run_date: date
) -> list[tuple[str, str]]:
    run_ids = succeeded_run_ids(spark, config, run_date)
    found = []
    for step_name in steps:
        for key in (run_ids.get(step_name), run_date.isoformat()):
            if key is None:
                continue
            # A listing of one run's report folder: a handful of files.
            pages = [
                f.path.removeprefix("file:")
                for f in files.list_files(spark, tables.reports_path(config, step_name, key))
                if f.path.endswith("/index.html")
            ]
            if pages:
                found.append((step_name, min(pages, key=lambda p: len(PurePosixPath(p).parts))))
                break
    return found


# ------------------------------------------------------------------------------------------
# Rendering


def needs(message: str | None) -> str:
    """The tables a no_input step needed, from its message (requirements.problem).

    >>> needs("propensity needs silver/order_lines (purchases to label); it is empty: map ...")
    'needs silver/order_lines'
    """
    found = re.search(r" needs (.+?); ", message or "")
    return "needs " + re.sub(r" \([^)]*\)", "", found[1]) if found else ""


def _sources_with_rows(ctx: JobContext) -> set[str] | None:
    try:
        return requirements.sources_with_rows(ctx.spark, ctx.config)
    except Exception as exc:  # the step lines must print even when silver cannot be read
        log.warning("summary: could not tell which sources have rows: %s", exc)
        return None


def ran_on(outcome: Outcome, present: set[str] | None) -> str:
    """'  on: events, catalog': the sources of a succeeded step that had rows."""
    sources = requirements.stage_sources(outcome.step)
    if outcome.status is not Status.SUCCEEDED or present is None or not sources:
        return ""
    return f"  on: {', '.join(s for s in sources if s in present) or 'no source'}"


def render_steps(ctx: JobContext, outcomes: Sequence[Outcome]) -> str:
    """A line per step: status, seconds and the sources it ran on (or what it needed)."""
    present = _sources_with_rows(ctx)
    lines = [f"pipeline {ctx.run_id} run_date={ctx.run_date.isoformat()}"]
    lines += [f"  {'step':<12} {'status':<10} {'seconds':>9}  inputs"]
    by_step = {o.step: o for o in outcomes}
    for name in ctx.config.pipeline.steps:
        o = by_step.get(name)
        if o is None:
            lines.append(f"  {name:<12} {'not run':<10} {'':>9}")
        elif o.status is Status.NO_INPUT:
            lines.append(f"  {name:<12} {o.status.value:<10} {'-':>9}  {needs(o.error)}")
        else:
            lines.append(f"  {name:<12} {o.status.value:<10} {o.seconds:>9.1f}{ran_on(o, present)}")
    lines += [
        f"  {o.step} {o.status.value}: {o.error}"
        for o in outcomes
        if o.status in (Status.FAILED, Status.NO_INPUT)
    ]
    return "\n".join(lines)


def render(ctx: JobContext, outcomes: Sequence[Outcome]) -> str:
    spark, config, run_date = ctx.spark, ctx.config, ctx.run_date
    steps = config.pipeline.steps
    lines = [render_steps(ctx, outcomes), f"tables (rows; gold and activation at {run_date}):"]
    for output in (o for o in OUTPUTS if o.step in steps):
        name = f"{output.layer.value}/{output.table}"
        try:
            rows = count_rows(spark, config, output, run_date)
        except Exception as exc:  # a table of an unexpected shape must not fail a good run
            log.warning("summary: could not count %s: %s", name, exc)
            rows = None
        lines.append(f"  {name:<32} {'-' if rows is None else f'{rows:,}':>12}")
    metric_lines = []
    for step_name in (s for s in steps if s in METRICS):
        try:
            shown = METRICS[step_name](spark, config, run_date)
            if step_name in registry.MODELS:
                shown = [*registry.summary_lines(spark, config, step_name, run_date), *shown]
        except Exception as exc:
            log.warning("summary: no %s metrics: %s", step_name, exc)
            shown = []
        metric_lines += [f"  {step_name}: {line}" for line in shown]
    if metric_lines:
        lines += ["metrics:", *metric_lines]
    pages = report_pages(spark, config, steps, run_date)
    if pages:
        lines += ["reports:", *(f"  {step_name}: {path}" for step_name, path in pages)]
    return "\n".join(lines)

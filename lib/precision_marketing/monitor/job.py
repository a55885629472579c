"""monitor: are the served models still right? gold/* scorings + silver order lines ->
gold/model_monitoring and a report.

Realized quality: every past scoring whose outcome window has ended by the run date (within
`monitor.lookback_days`) is judged against what customers then bought: ROC/PR AUC, top-decile
lift and decile calibration of gold/propensity; hit rate, recall@k and NDCG@k of
gold/recommendations; migration rates between gold/segments snapshots (gold/segment_migrations).
Drift: each model's numeric inputs in gold/user_features at the as_of its serving version was
fitted on (`models.as_of_of`) against the run date's snapshot: PSI and the change in the share
of nulls, with thresholds that warn or mark the model for refit.

One row per model x figure (or feature) x scoring date; the run date's snapshot is replaced as a
whole, so a rerun adds nothing. Missing inputs (no recommendations on a transactions-only shop,
nothing matured on a first run) are said in the log and the report, never fatal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import models
from precision_marketing.config import Config
from precision_marketing.features import availability
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.monitor import report, transforms
from precision_marketing.monitor.transforms import OK, REFIT, WARN, Row
from precision_marketing.propensity import model as propensity_model
from precision_marketing.propensity.transforms import with_history_days
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, step
from precision_marketing.schemas import gold, silver
from precision_marketing.schemas.project import project

log = logging.getLogger(__name__)

MONITORING = "model_monitoring"
SCHEMA = gold.MODEL_MONITORING
MODEL_STATUS = "model_status"  # one row per model: its worst status of the run

# The gold table each model's scorings live in.
SCORES = {"segment": "segments", "recommend": "recommendations", "propensity": "propensity"}
ORDER_LINES_SCHEMA = project(
    silver.ORDER_LINES,
    "order_id", "line_no", "customer_id", "item_id", "order_ts", "order_date", "status",
    "net_quantity", "net_amount",
)  # fmt: skip
MIGRATIONS_SCHEMA = project(
    gold.SEGMENT_MIGRATIONS,
    "as_of_date", "model_version", "previous_as_of_date", "from_segment_id", "to_segment_id",
    "customers",
)  # fmt: skip


@dataclass
class Findings:
    rows: list[Row]
    unmeasured: list[str]  # what could not be measured yet, and why


def run(ctx: JobContext) -> None:
    require(ctx, "monitor")
    found = Findings([], [])
    with step(log, "monitor drift") as s:
        for name in ("segment", "propensity"):
            found.rows += drift_rows(ctx, name, found.unmeasured)
        s.rows(rows=len(found.rows))
    with step(log, "monitor realized") as s:
        before = len(found.rows)
        found.rows += propensity_rows(ctx, found.unmeasured)
        found.rows += recommend_rows(ctx, found.unmeasured)
        found.rows += migration_rows(ctx, found.unmeasured)
        s.rows(rows=len(found.rows) - before)
    if len(found.rows) == sum(r.metric in ("psi", "null_share_increase") for r in found.rows):
        log.info("monitor: nothing matured to measure yet: %s", "; ".join(found.unmeasured))
    elif found.unmeasured:
        log.info("monitor: not measured: %s", "; ".join(found.unmeasured))
    found.rows += status_rows(found.rows)
    for r in found.rows:
        if r.status != OK:
            log.warning(
                "monitor %s %s: %s%s = %s (threshold %s): %s",
                r.model, r.model_version, r.metric, f" of {r.feature}" if r.feature else "",
                _num(r.value), _num(r.threshold), r.status,
            )  # fmt: skip
    with step(log, f"monitor write {MONITORING}") as s:
        path = tables.table_path(ctx.config, Layer.GOLD, MONITORING)
        out = frame(ctx, found.rows)
        # One atomic Delta commit: a failed run leaves the table as it was.
        tables.replace_where(
            out, path, f"as_of_date = '{ctx.run_date}'", partition_by=["as_of_date"]
        )
        s.rows(rows=tables.last_commit(ctx.spark, path).rows("numOutputRows"))
    folder = tables.reports_path(ctx.config, "monitor", ctx.run_id)
    page = report.page(ctx.run_date, ctx.run_id, found.rows, found.unmeasured, ctx.config.monitor)
    log.info("monitor report: %s", report.write(ctx.spark, folder, page))


def frame(ctx: JobContext, rows: list[Row]) -> DataFrame:
    data = [
        (ctx.run_date, r.model, r.model_version, r.scored_as_of, r.metric, r.feature,
         r.value, r.threshold, r.status, ctx.run_id)
        for r in rows
    ]  # fmt: skip
    return ctx.spark.createDataFrame(data, SCHEMA)


def status_rows(rows: list[Row]) -> list[Row]:
    """Per model: its worst status (the row retraining reads), value = figures not 'ok'."""
    out = []
    for name in SCORES:
        mine = [r for r in rows if r.model == name]
        if not mine:
            continue
        versions = [r.model_version for r in mine if r.scored_as_of == max_date(mine)]
        out.append(
            Row(
                name,
                versions[0] if versions else None,
                max_date(mine),
                MODEL_STATUS,
                float(sum(r.status != OK for r in mine)),
                status=transforms.worst([r.status for r in mine]),
            )
        )
    return out


def max_date(rows: list[Row]) -> date | None:
    return max((r.scored_as_of for r in rows if r.scored_as_of), default=None)


# ------------------------------------------------------------------------------------------
# Inputs


def _read(spark: SparkSession, config: Config, layer: Layer, name: str) -> DataFrame | None:
    path = tables.table_path(config, layer, name)
    return tables.read(spark, path) if tables.is_delta(spark, path) else None


def scoring_versions(scores: DataFrame, run_date: date) -> dict[date, str]:
    """as_of_date -> model_version of every snapshot up to the run date (one row per date)."""
    rows = (
        scores.where(F.col("as_of_date") <= F.lit(run_date))
        .groupBy("as_of_date")
        .agg(F.max("model_version").alias("model_version"))
        .collect()  # one row per scoring date
    )
    return {r["as_of_date"]: r["model_version"] for r in rows}


def matured_scorings(
    ctx: JobContext, model: str, table: str, window: int, unmeasured: list[str]
) -> tuple[DataFrame, dict[date, str], list[date]] | None:
    """gold/<table>, its scoring versions and the dates whose `window`-day outcome has ended;
    None (with the reason in `unmeasured`) when there is nothing to judge yet."""
    scores = _read(ctx.spark, ctx.config, Layer.GOLD, table)
    if scores is None:
        unmeasured.append(f"{model}: no gold/{table} (no {model} stage ran)")
        return None
    versions = scoring_versions(scores, ctx.run_date)
    dates = transforms.matured(
        list(versions), ctx.run_date, window, ctx.config.monitor.lookback_days
    )
    if not dates:
        unmeasured.append(_not_yet(model, versions, window))
        return None
    return scores, versions, dates


def order_lines(ctx: JobContext) -> DataFrame:
    path = tables.table_path(ctx.config, Layer.SILVER, "order_lines")
    return tables.read_or_empty(ctx.spark, path, ORDER_LINES_SCHEMA)


# ------------------------------------------------------------------------------------------
# Drift


def model_inputs(ctx: JobContext, name: str, snapshot: DataFrame) -> tuple[DataFrame, list[str]]:
    """The snapshot with the model's numeric inputs as columns, and their names."""
    numeric = {
        f.name
        for f in snapshot.schema.fields
        if f.dataType.typeName() in ("integer", "long", "double", "float", "short", "decimal")
    }
    if name == "segment":
        wanted = availability.expand(ctx.config.segment.model_features, snapshot.columns)
        return snapshot, [f for f in wanted if f in numeric]
    cfg = ctx.config.propensity
    with_inputs = propensity_model.with_derived(with_history_days(snapshot), cfg)
    wanted = propensity_model.resolved(cfg, snapshot.columns).model_features
    known = numeric | set(cfg.derived_features)
    return with_inputs, [f for f in wanted if f in known and f in with_inputs.columns]


def drift_rows(ctx: JobContext, name: str, unmeasured: list[str]) -> list[Row]:
    """PSI and null-share increase of each numeric input of the serving model version."""
    spark, config, cfg = ctx.spark, ctx.config, ctx.config.monitor
    scores = _read(spark, config, Layer.GOLD, SCORES[name])
    versions = {} if scores is None else scoring_versions(scores, ctx.run_date)
    if not versions:
        unmeasured.append(f"{name} drift: no gold/{SCORES[name]} snapshot")
        return []
    version = versions[max(versions)]
    fitted_on = models.as_of_of(version)
    features = _read(spark, config, Layer.GOLD, "user_features")
    if fitted_on is None or features is None:
        unmeasured.append(f"{name} drift: no training snapshot known for {version}")
        return []
    wanted = {fitted_on, ctx.run_date}
    present = {
        r[0]
        for r in features.where(F.col("as_of_date").isin(*wanted))
        .select("as_of_date")
        .distinct()
        .collect()  # at most two dates
    }
    if present != wanted:
        missing = ", ".join(str(d) for d in sorted(wanted - present))
        unmeasured.append(f"{name} drift: no gold/user_features snapshot for {missing}")
        return []
    training = features.where(F.col("as_of_date") == F.lit(fitted_on)).drop("as_of_date")
    current = features.where(F.col("as_of_date") == F.lit(ctx.run_date)).drop("as_of_date")
    training, inputs = model_inputs(ctx, name, training)
    current, _ = model_inputs(ctx, name, current)
    drifted = transforms.drift(training, current, inputs, cfg.psi_bins, cfg.psi_epsilon)
    rows = []
    for d in sorted(drifted.collect(), key=lambda d: d[transforms.FEATURE]):  # one per input
        psi = d["psi"]
        more_nulls = (d["null_share_current"] or 0.0) - (d["null_share_training"] or 0.0)
        rows += [
            _judged(name, version, ctx.run_date, "psi", psi, cfg.psi_warn, cfg.psi_refit,
                    d[transforms.FEATURE]),
            _judged(name, version, ctx.run_date, "null_share_increase", more_nulls,
                    cfg.null_share_warn, cfg.null_share_refit, d[transforms.FEATURE]),
        ]  # fmt: skip
    return rows


def _judged(model: str, version: str, as_of: date, metric: str, value: float | None,
            warn: float, refit: float, feature: str) -> Row:  # fmt: skip
    """A drift row; `threshold` is the one reached (the warning one while below it)."""
    judged = transforms.status(value, warn, refit)
    threshold = refit if judged == REFIT else warn
    return Row(model, version, as_of, metric, value, threshold, judged, feature)


# ------------------------------------------------------------------------------------------
# Realized quality


def propensity_rows(ctx: JobContext, unmeasured: list[str]) -> list[Row]:
    cfg, horizon = ctx.config.monitor, ctx.config.propensity.horizon_days
    found = matured_scorings(ctx, "propensity", "propensity", horizon, unmeasured)
    if found is None:
        return []
    scores, versions, dates = found
    lines = order_lines(ctx)
    rows = []
    for as_of in dates:
        scored = scores.where(F.col("as_of_date") == F.lit(as_of))
        figures = transforms.propensity_figures(
            transforms.propensity_outcomes(scored, lines, as_of, horizon)
        )
        version = versions[as_of]

        def row(metric: str, value: float | None, v: str = version, d: date = as_of) -> Row:
            return Row("propensity", v, d, metric, value)

        auc_status = WARN if figures.roc_auc < cfg.min_roc_auc else OK
        rows += [
            Row("propensity", version, as_of, "roc_auc", figures.roc_auc, cfg.min_roc_auc,
                auc_status),
            row("pr_auc", figures.pr_auc),
            row("base_rate", figures.base_rate),
            row("top_decile_lift", figures.top_decile_lift),
            row("calibration_error", figures.calibration_error),
        ]  # fmt: skip
        for d in figures.deciles:
            rows += [
                row(f"mean_predicted_d{d.decile:02d}", d.mean_predicted),
                row(f"observed_rate_d{d.decile:02d}", d.observed_rate),
            ]
    return rows


def recommend_rows(ctx: JobContext, unmeasured: list[str]) -> list[Row]:
    cfg = ctx.config.monitor
    window = cfg.recommend_window_days or ctx.config.propensity.horizon_days
    found = matured_scorings(ctx, "recommend", "recommendations", window, unmeasured)
    if found is None:
        return []
    served, versions, dates = found
    lines = order_lines(ctx)
    rows = []
    for as_of in dates:
        lists = transforms.served_lists(served.where(F.col("as_of_date") == F.lit(as_of)))
        bought = transforms.bought_after(lines, as_of, window)
        figures = transforms.recommendation_figures(lists, bought, cfg.recommend_k).first()
        assert figures is not None
        for metric, column in (
            ("customers_judged", "customers"),
            ("hit_rate", "hit_rate"),
            (f"recall_at_{cfg.recommend_k}", "recall_at_k"),
            (f"ndcg_at_{cfg.recommend_k}", "ndcg_at_k"),
        ):
            value = figures[column]
            rows.append(
                Row("recommend", versions[as_of], as_of, metric,
                    None if value is None else float(value))
            )  # fmt: skip
    return rows


def migration_rows(ctx: JobContext, unmeasured: list[str]) -> list[Row]:
    spark, config, cfg = ctx.spark, ctx.config, ctx.config.monitor
    path = tables.table_path(config, Layer.GOLD, "segment_migrations")
    migrations = tables.read_or_empty(spark, path, MIGRATIONS_SCHEMA)
    oldest = F.date_sub(F.lit(ctx.run_date), cfg.lookback_days)
    recent = migrations.where(F.col("as_of_date").between(oldest, F.lit(ctx.run_date)))
    rates = transforms.migration_rates(recent).orderBy("as_of_date").collect()  # one per date
    if not rates:
        unmeasured.append("segment: one gold/segments snapshot so far, no migration to measure")
        return []
    rows = []
    for r in rates:
        rate = r["migration_rate"]
        judged = WARN if rate is not None and rate > cfg.migration_warn else OK
        rows.append(
            Row("segment", r["model_version"], r["as_of_date"], "migration_rate", rate,
                cfg.migration_warn, judged)
        )  # fmt: skip
    return rows


def _not_yet(model: str, versions: dict[date, str], window: int) -> str:
    if not versions:
        return f"{model}: no scoring up to the run date"
    first = min(versions)
    return f"{model}: no scoring's {window}-day outcome window has ended (first scored {first})"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"

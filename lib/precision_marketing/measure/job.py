"""measure: published campaign audiences + silver order lines -> gold/campaign_results.

For every campaign window that has ended (within `measure.lookback_days`), the treatment and
control groups of the audiences published for it (every send of that window: see
`transforms.EXPERIMENT`) are compared on conversion and revenue in the window, overall and by
segment and propensity decile. The run date's snapshot (`as_of_date`)
is replaced as a whole, so a rerun of the same day leaves the same rows.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.measure import transforms
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, step
from precision_marketing.schemas import activation, silver
from precision_marketing.schemas.project import project

log = logging.getLogger(__name__)

RESULTS = "campaign_results"

# Only the columns measure reads; used as the empty frame before publish has run.
CAMPAIGN_RUNS_SCHEMA = activation.CAMPAIGN_RUNS_READ
AUDIENCES_SCHEMA = activation.AUDIENCES_READ
ORDER_LINES_SCHEMA = project(
    silver.ORDER_LINES, "customer_id", "order_date", "net_quantity", "net_amount"
)


def run(ctx: JobContext) -> None:
    require(ctx, "measure")
    spark, config, cfg = ctx.spark, ctx.config, ctx.config.measure

    def table(layer: Layer, name: str, schema: str | StructType) -> DataFrame:
        return tables.read_or_empty(spark, tables.table_path(config, layer, name), schema)

    campaign_runs = table(Layer.ACTIVATION, "campaign_runs", CAMPAIGN_RUNS_SCHEMA)
    runs = transforms.ended_runs(campaign_runs, ctx.run_date, cfg.lookback_days).persist()
    path = tables.table_path(config, Layer.GOLD, RESULTS)
    try:
        with step(log, "measure campaigns") as s:
            sends = transforms.sends(runs)
            # One row per campaign window (a configured list): small enough to log.
            windows = sends.orderBy("campaign_id", "start_date").collect()
            for row in windows:
                log.info(
                    "measure %s (%s) %s..%s: %d publish run(s)",
                    row["campaign_id"],
                    row["channel"],
                    row["start_date"],
                    row["end_date"],
                    row["publish_runs"],
                )
            s.rows(windows=len(windows), publish_runs=sum(r["publish_runs"] for r in windows))
        with step(log, "measure campaign_results") as s:
            audiences = table(Layer.ACTIVATION, "audiences", AUDIENCES_SCHEMA)
            # Only the days some measured window covers (order_lines holds the whole history).
            first = min((w["start_date"] for w in windows), default=ctx.run_date)
            last = max((w["end_date"] for w in windows), default=ctx.run_date)
            order_lines = table(Layer.SILVER, "order_lines", ORDER_LINES_SCHEMA).where(
                F.col("order_date").between(F.lit(first), F.lit(last))
            )
            members = transforms.members(audiences, runs)
            sums = transforms.group_sums(transforms.member_outcomes(members, order_lines))
            out = transforms.results(sums, sends, ctx.run_date, ctx.run_id, cfg.gross_margin)
            # One atomic Delta commit: a failed run leaves the table as it was.
            tables.replace_where(
                out, path, f"as_of_date = '{ctx.run_date}'", partition_by=["as_of_date"]
            )
            s.rows(rows=tables.last_commit(spark, path).rows("numOutputRows"))
    finally:
        # Also on failure: the pipeline and the tests share one session.
        runs.unpersist()
    log_summary(ctx, path)


def log_summary(ctx: JobContext, path: str) -> None:
    """One line per measured campaign window: groups, conversion rates, uplift with its
    interval, p-value and ROI."""
    overall = (
        tables.read(ctx.spark, path)
        .where(
            (F.col("as_of_date") == F.lit(ctx.run_date))
            & (F.col("breakdown") == transforms.OVERALL)
        )
        .orderBy("campaign_id", "start_date")
    )
    # One row per measured campaign window.
    for r in overall.collect():
        log.info(
            "measure %s %s: treatment %d (%.2f%% converted) vs control %d (%.2f%%): uplift %s "
            "[%s, %s] p=%s, incremental revenue %s, cost %.2f, ROI %s",
            r["campaign_id"],
            r["start_date"],
            r["treatment_customers"],
            100 * (r["treatment_conversion_rate"] or 0.0),
            r["control_customers"],
            100 * (r["control_conversion_rate"] or 0.0),
            _pp(r["conversion_uplift"]),
            _pp(r["conversion_uplift_ci_low"]),
            _pp(r["conversion_uplift_ci_high"]),
            _num(r["conversion_p_value"], "{:.3g}"),
            _num(r["incremental_revenue"], "{:.2f}"),
            r["campaign_cost"] or 0.0,
            _num(r["roi"], "{:.2f}"),
        )


def _pp(value: float | None) -> str:
    """A rate difference in percentage points."""
    return "n/a" if value is None else f"{100 * value:+.2f}pp"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)

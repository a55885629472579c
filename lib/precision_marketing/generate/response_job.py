"""simulate_response: landing transactions for what campaign audiences bought in their windows.

Synthetic data only: it needs the generator's ground truth (storage.ground_truth), which the
pipeline never reads. Every campaign window that ended before the run date and has not been
simulated yet (measure's experiments: all publish runs of a campaign with that window) gets
baseline orders from its members' planted purchase rates and, for treated members, the planted
extra conversion (generate/response.py). Output:

- `landing/transactions/response=<run date>-<tag>/part-*.csv` in the transaction CSV contract,
  so ingest, validate and silver take the orders like any other batch; the tag names the set
  of windows, so each batch lands in a folder of its own;
- `ground_truth/campaign_effects`, the planted effect on every member, written last: a window
  listed there has been simulated, so a rerun neither adds orders nor lands a second file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import date
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from precision_marketing.config import Config, ConfigError
from precision_marketing.generate import response
from precision_marketing.generate.draws import sql_literal
from precision_marketing.generate.model import GenParams
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.measure import transforms
from precision_marketing.measure.transforms import EXPERIMENT
from precision_marketing.runtime import JobContext, step
from precision_marketing.schemas.activation import AUDIENCES_READ as AUDIENCES_SCHEMA
from precision_marketing.schemas.activation import CAMPAIGN_RUNS_READ as CAMPAIGN_RUNS_SCHEMA
from precision_marketing.spark import observing_session

log = logging.getLogger(__name__)

EFFECTS = "campaign_effects"
EFFECTS_KEYS_SCHEMA = "campaign_id string, channel string, start_date date, end_date date"


def generation_params(spark: SparkSession, config: Config) -> GenParams:
    """The parameters the landing data was generated with (ground_truth/generation)."""
    path = tables.ground_truth(config, "generation")
    if not tables.is_delta(spark, path):
        raise ConfigError(
            f"simulate_response needs the generator's ground truth, and {path} does not exist: "
            "run `generate` first (the response is simulated for synthetic customers only)"
        )
    row = tables.read(spark, path).first()  # one row per generation
    assert row is not None
    return GenParams(
        seed=int(row["seed"]),
        run_date=row["run_date"],
        customers=int(row["customers"]),
        days=int(row["days"]),
        defect_rate=float(row["defect_rate"]),
        crm_exports=int(row["crm_exports"]),
        transaction_files=int(row["transaction_files"]),
        event_files=int(row["event_files"]),
    )


def batch_folder(run_date: date, windows: list[Row]) -> str:
    """`response=<run date>-<8 hex>`: the same windows always land in the same folder."""
    keys = sorted("|".join(str(w[k]) for k in EXPERIMENT) for w in windows)
    tag = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:8]
    return f"response={run_date:%Y%m%d}-{tag}"


def window_predicate(windows: list[Row]) -> str:
    """A SQL predicate matching the rows of these campaign windows."""
    return " OR ".join(
        "(" + " AND ".join(f"{k} = {sql_literal(str(w[k]))}" for k in EXPERIMENT) + ")"
        for w in windows
    )


def run(ctx: JobContext) -> None:
    ctx = replace(ctx, spark=observing_session(ctx.spark))
    spark, config, cfg = ctx.spark, ctx.config, ctx.config.response
    response.check_uplift(cfg.uplift_by_archetype)
    p = generation_params(spark, config)
    effects_path = tables.ground_truth(config, EFFECTS)

    def activation(name: str, schema: str | StructType) -> DataFrame:
        return tables.read_or_empty(
            spark, tables.table_path(config, Layer.ACTIVATION, name), schema
        )

    with step(log, "simulate_response windows") as s:
        ended = transforms.ended_runs(
            activation("campaign_runs", CAMPAIGN_RUNS_SCHEMA), ctx.run_date, lookback_days=None
        )
        done = tables.read_or_empty(spark, effects_path, EFFECTS_KEYS_SCHEMA)
        runs = ended.join(done.select(*EXPERIMENT).distinct(), list(EXPERIMENT), "left_anti")
        # One row per campaign window (configured campaigns x sends): small.
        windows = runs.select(*EXPERIMENT).distinct().orderBy(*EXPERIMENT).collect()
        for w in windows:
            if w["start_date"] < p.run_date:
                log.warning(
                    "simulate_response %s %s: the window starts before the generated history "
                    "ends (%s): its baseline orders add to the history's",
                    w["campaign_id"],
                    w["start_date"],
                    p.run_date,
                )
        s.rows(windows=len(windows))
    if not windows:
        log.info("simulate_response: no ended campaign window left to simulate")
        return

    members = transforms.members(activation("audiences", AUDIENCES_SCHEMA), runs)
    world = response.with_world(members, p)
    simulated = response.planted(world, cfg.uplift_by_archetype, cfg.seed).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    days = response.baseline_days(simulated, cfg.seed).persist(StorageLevel.MEMORY_AND_DISK)
    folder = f"{tables.landing(config, 'transactions')}/{batch_folder(ctx.run_date, windows)}"
    which = window_predicate(windows)
    try:
        _write_landing(ctx, simulated, days, p, folder)
        with step(log, "simulate_response campaign_effects") as s:
            # One atomic commit, after the landing file: it marks the windows as simulated.
            effects = response.campaign_effects(simulated, days)
            tables.replace_where(effects, effects_path, which)
            s.rows(members=tables.last_commit(spark, effects_path).rows("numOutputRows"))
        log_effects(spark, effects_path, which)
    finally:
        days.unpersist()
        simulated.unpersist()


def _write_landing(
    ctx: JobContext, simulated: DataFrame, days: DataFrame, p: GenParams, folder: str
) -> None:
    seed = ctx.config.response.seed
    with step(log, "simulate_response transactions") as s:
        orders = response.baseline_orders(days, seed).unionByName(
            response.response_orders(simulated, seed)
        )
        obs = Observation("response_transactions")
        rows = response.transactions(response.order_lines(orders, p, seed)).observe(
            obs, F.count(F.lit(1)).alias("rows")
        )
        # A folder left by a run that failed before recording the windows: the same rows again.
        files.delete(ctx.spark, folder)
        try:
            rows.coalesce(1).write.mode("errorifexists").option("header", True).csv(folder)
        except BaseException:
            files.delete(ctx.spark, folder)
            raise
        s.rows(rows=int(obs.get["rows"]))
    log.info("simulate_response landed %s", folder)


def log_effects(spark: SparkSession, effects_path: str, which: str) -> None:
    """One line per simulated window: group sizes, responders and the planted uplift."""
    treated = F.col("treated")
    summary = (
        tables.read(spark, effects_path)
        .where(which)
        .groupBy(*EXPERIMENT)
        .agg(
            F.sum(treated.cast("int")).alias("treatment"),
            F.sum((~treated).cast("int")).alias("control"),
            F.sum(F.col("responded").cast("int")).alias("responders"),
            F.avg(F.when(treated, F.col("planted_uplift"))).alias("planted_uplift"),
            F.avg(F.when(treated, F.col("expected_conversion_uplift"))).alias("expected"),
        )
        .orderBy(*EXPERIMENT)
    )
    for r in summary.collect():  # one row per simulated window
        log.info(
            "simulate_response %s %s..%s: treatment %d, control %d, %d planted responders; "
            "mean planted response %.4f, planted conversion uplift %.4f",
            r["campaign_id"],
            r["start_date"],
            r["end_date"],
            r["treatment"],
            r["control"],
            r["responders"],
            _or_zero(r["planted_uplift"]),
            _or_zero(r["expected"]),
        )


def _or_zero(value: Any) -> float:
    return 0.0 if value is None else float(value)

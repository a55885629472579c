"""The generate job: synthetic landing files plus the planted ground truth behind them.

Writes the four raw sources under storage.landing (replacing what a previous generation left
there) and the ground-truth Delta tables under storage.ground_truth, which the pipeline never
reads. docs/data-contract.md describes the layout, the planted structure and the defects.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import generate as gen
from precision_marketing.generate import model as m
from precision_marketing.generate import next_day
from precision_marketing.generate.model import GenParams
from precision_marketing.io import files, tables
from precision_marketing.runtime import JobContext, Persisted, step
from precision_marketing.spark import observing_session

log = logging.getLogger(__name__)

TRUTH_TABLES = ("customers", "item_preferences", "defects", "counts", "generation")
# Under storage.ground_truth, removed when the job ends. No leading "_": Spark's file index
# skips such paths ("All paths were ignored").
SCRATCH = "generate_scratch_customers"
COUNTS_SCHEMA = "source string, rows long, distinct_keys long, key_columns string"
KEY_COLUMNS = {
    "events": "event_id",
    "crm": "customer_id",
    "transactions": "order_id,line_no",
    "catalog": "item_id",
}


def params(ctx: JobContext) -> GenParams:
    """generate.* from config, overridden by the command line's options when given."""
    g = ctx.config.generate

    def option(name: str, default: Any) -> Any:
        value = ctx.options.get(name)
        return default if value is None else value

    return GenParams(
        seed=int(option("seed", g.seed)),
        run_date=ctx.run_date,
        customers=int(option("customers", g.customers)),
        days=int(option("days", g.days)),
        defect_rate=float(option("defect_rate", g.defect_rate)),
        crm_exports=g.crm_exports,
        transaction_files=g.transaction_files,
        event_files=g.event_files,
    )


def run(ctx: JobContext) -> None:
    if ctx.options.get("next_day"):
        next_day.run(replace(ctx, spark=observing_session(ctx.spark)))
        return
    if ctx.options.get("if_empty") and _landing_has_files(ctx):
        log.info("generate: landing already holds files; nothing generated (--if-empty)")
        return
    _run(replace(ctx, spark=observing_session(ctx.spark)))


def _landing_has_files(ctx: JobContext) -> bool:
    return any(
        files.list_files(ctx.spark, tables.landing(ctx.config, source.folder))
        for source in contracts.SOURCES.values()
    )


def _run(ctx: JobContext) -> None:
    p = params(ctx)
    spark, config = ctx.spark, ctx.config
    log.info(
        "generate seed=%d customers=%d days=%d defect_rate=%g run_date=%s items=%d",
        p.seed,
        p.customers,
        p.days,
        p.defect_rate,
        p.run_date,
        p.items,
    )
    scratch = tables.ground_truth(config, SCRATCH)
    with step(log, "generate.prepare") as s:
        for source in contracts.SOURCES.values():
            files.delete(spark, tables.landing(config, source.folder))
        for table in (*TRUTH_TABLES, SCRATCH):
            files.delete(spark, tables.ground_truth(config, table))
        customers = _materialized(spark, gen.customers(spark, p), scratch, _tasks(spark, p))
        plan = gen.defect_plan(customers, p)
        designated = gen.designated_events(customers, p, plan).persist()
        s.rows(customers=p.customers, items=p.items, defects=sum(plan.counts.values()))
    writer = _Writer(spark, ctx, p, plan)
    try:
        writer.catalog()
        writer.transactions(customers)
        writer.events(customers, designated)
        writer.crm(customers)
        writer.truth(customers)
    finally:
        writer.persisted.release()
        designated.unpersist()
        customers.unpersist()
        files.delete(spark, scratch)


def _tasks(spark: SparkSession, p: GenParams) -> int:
    """Partitions of the customer frame: about 25k customers (some 1M events) per task."""
    return max(spark.sparkContext.defaultParallelism, -(-p.customers // 25_000))


def _materialized(spark: SparkSession, df: DataFrame, path: str, partitions: int) -> DataFrame:
    """`df` written once as Parquet and read back (cached), spread over `partitions`.

    Every later frame derives from the customer frame; reading it back makes its plan a file
    scan instead of some sixty generated expressions, which Spark would otherwise analyse and
    match against the cache again for every derived frame (seconds of driver time per frame).
    """
    df.write.mode("errorifexists").parquet(path)
    return (
        spark.read.parquet(path)
        .repartition(partitions, "idx")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )


class _Writer:
    """Writes the sources one by one, collecting counts and defect rows for the truth tables.

    Defect frames are small and used twice (landing file, defects table): they are cached.
    """

    def __init__(self, spark: SparkSession, ctx: JobContext, p: GenParams, plan: gen.DefectPlan):
        self.spark, self.config, self.p, self.plan = spark, ctx.config, p, plan
        self.counts: list[tuple[str, int, int, str]] = []
        self.defects: list[DataFrame] = []
        self.file_defects: list[tuple[Any, ...]] = []
        self.persisted = Persisted()
        self.cache = self.persisted.keep

    def landing(self, folder: str) -> str:
        return tables.landing(self.config, folder)

    def catalog(self) -> None:
        p, plan = self.p, self.plan
        columns = [f.name for f in contracts.CATALOG.fields]
        with step(log, "generate.catalog") as s:
            obs = Observation("catalog")
            clean = gen.catalog(self.spark, p).observe(obs, F.count(F.lit(1)).alias("rows"))
            bad = self.cache(gen.catalog_defects(self.spark, p, plan))
            _csv(clean.unionByName(bad.select(*columns)).coalesce(1), self.landing("catalog"))
            rows = int(obs.get["rows"])
            self.counts.append(("catalog", rows, rows, KEY_COLUMNS["catalog"]))
            self.defects.append(gen.defects_table(bad, "catalog", F.lit("catalog")))
            s.rows(rows=rows, defects=plan.total("catalog"))

    def transactions(self, customers: DataFrame) -> None:
        p, plan = self.p, self.plan
        path = self.landing("transactions")
        columns = [*(f.name for f in contracts.TRANSACTIONS.fields), "part"]
        with step(log, "generate.transactions") as s:
            obs = Observation("transactions")
            clean = gen.transactions(gen.order_lines(customers, p), p).observe(
                obs,
                F.count(F.lit(1)).alias("rows"),
                F.sum(F.col("_sale").cast("long")).alias("keys"),
            )
            bad = self.cache(gen.transaction_defects(self.spark, customers, p, plan))
            # One file per period: the bad lines arrive mixed in with the good ones.
            everything = clean.select(*columns).unionByName(bad.select(*columns))
            _csv(everything.repartition("part"), path, "part")
            location = F.concat(F.lit("transactions/part="), F.col("part"))
            self.defects.append(gen.defects_table(bad, "transactions", location))
            if plan.count("transactions", "empty_file"):
                marker = plan.marker("transactions", "empty_file")
                name = f"part={p.transaction_files:02d}/{marker}-empty.csv"
                files.write_text(self.spark, f"{path}/{name}", "")
                self.file_defects.append(
                    ("transactions", "empty_file", marker, None, f"transactions/{name}", 0)
                )
            result = obs.get
            rows, keys = int(result["rows"]), int(result["keys"] or 0)
            self.counts.append(("transactions", rows, keys, KEY_COLUMNS["transactions"]))
            s.rows(rows=rows, defects=plan.total("transactions"))

    def events(self, customers: DataFrame, designated: DataFrame) -> None:
        p, plan = self.p, self.plan
        path = self.landing("events")
        with step(log, "generate.events") as s:
            obs = Observation("events")
            everything = gen.events(
                gen.with_extra_markers(customers, designated),
                gen.order_lines(customers, p),
                gen.visitors(self.spark, p),
                p,
            )
            clean = gen.render_events(everything, p).observe(obs, F.count(F.lit(1)).alias("rows"))
            chosen = gen.designated_lines(customers, designated, p)
            bad = self.cache(gen.event_defects(self.spark, customers, p, plan).unionByName(chosen))
            # The extra_field lines are clean lines (written with them): table rows only.
            # A union keeps its inputs' partitions apart, so the bad lines get files of their
            # own: every duplicate is in another file than its original.
            lines = clean.coalesce(_tasks(self.spark, p)).unionByName(
                bad.where(F.col("_kind") != "extra_field").select("value", "part").coalesce(1)
            )
            lines.write.mode("append").partitionBy("part").text(path)
            location = F.concat(F.lit("events/part="), F.col("part"))
            self.defects.append(gen.defects_table(bad, "events", location))
            rows = int(obs.get["rows"])
            # Event ids are 128-bit hashes of structural keys: unique, so keys == rows.
            self.counts.append(("events", rows, rows, KEY_COLUMNS["events"]))
            s.rows(rows=rows, defects=plan.total("events"))

    def crm(self, customers: DataFrame) -> None:
        p, plan = self.p, self.plan
        path = self.landing("crm")
        columns = [f.name for f in contracts.CRM.fields]
        metrics = (
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.col("_first").cast("long")).alias("keys"),
        )
        with step(log, "generate.crm") as s:
            rows = gen.crm_rows(customers, p)
            # The export whose file carries the extra column (none without defects).
            extra = f"{p.extra_column_export:02d}" if plan.count("crm", "extra_column") else ""
            obs_main, obs_extra = Observation("crm"), Observation("crm_extra_column")
            main = rows.where(F.col("export") != extra).observe(obs_main, *metrics)
            # crm_defects never targets the extra-column export, so its file stays clean.
            bad = self.cache(gen.crm_defects(self.spark, customers, p, plan))
            everything = main.select(*columns, "export").unionByName(bad.select(*columns, "export"))
            _csv(everything.repartition("export"), path, "export")
            location = F.concat(F.lit("crm/export="), F.col("export"))
            self.defects.append(gen.defects_table(bad, "crm", location))
            main_result = obs_main.get
            total, keys = int(main_result["rows"]), int(main_result["keys"] or 0)
            if extra:
                with_points = gen.with_loyalty_points(rows.where(F.col("export") == extra), p)
                _csv(
                    with_points.observe(obs_extra, *metrics)
                    .select(*columns, m.EXTRA_CRM_COLUMN)
                    .coalesce(1),
                    f"{path}/export={extra}",
                )
                extra_rows = int(obs_extra.get["rows"])
                total, keys = total + extra_rows, keys + int(obs_extra.get["keys"] or 0)
                marker = plan.marker("crm", "extra_column")
                location_text = f"crm/export={extra}"
                self.file_defects.append(
                    ("crm", "extra_column", marker, None, location_text, extra_rows)
                )
            self.counts.append(("crm", total, keys, KEY_COLUMNS["crm"]))
            s.rows(rows=total, defects=plan.total("crm"))

    def truth(self, customers: DataFrame) -> None:
        p = self.p
        with step(log, "generate.ground_truth") as s:
            self._table(gen.truth_customers(customers), "customers")
            self._table(gen.truth_item_preferences(customers, p), "item_preferences")
            by_kind = {(k.source, k.kind): k for k in m.DEFECT_KINDS}
            literal_rows = [
                (src, kind, by_kind[(src, kind)].expected_rule, marker,
                 by_kind[(src, kind)].marker_field, key, location, n)
                for src, kind, marker, key, location, n in self.file_defects
            ]  # fmt: skip
            defects = self.spark.createDataFrame(literal_rows, gen.DEFECTS_SCHEMA)
            for frame in self.defects:
                defects = defects.unionByName(frame)
            self._table(defects.coalesce(1), "defects")
            self._table(self.spark.createDataFrame(self.counts, COUNTS_SCHEMA), "counts")
            self._table(self._generation(), "generation")
            s.rows(tables=len(TRUTH_TABLES))

    def _generation(self) -> DataFrame:
        p = self.p
        row = [
            (
                p.seed,
                p.run_date,
                p.customers,
                p.days,
                p.defect_rate,
                p.items,
                p.run_date - timedelta(days=p.days),
                p.crm_exports,
                p.transaction_files,
                p.event_files,
            )
        ]
        schema = (
            "seed long, run_date date, customers long, days int, defect_rate double, items int, "
            "history_start date, crm_exports int, transaction_files int, event_files int"
        )
        return self.spark.createDataFrame(row, schema)

    def _table(self, df: DataFrame, name: str) -> None:
        tables.append(df, tables.ground_truth(self.config, name))


def _csv(df: DataFrame, path: str, partition_by: str | None = None) -> None:
    """CSV with a header in every file; the job cleared the folder, so append adds files."""
    writer = df.write.mode("append").option("header", True)
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.csv(path)

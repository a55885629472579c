"""The engine's floor: the least Spark and Delta can do with the benchmark's data.

A stage's seconds mean little alone; as a multiple of the bare read-and-write of the same rows
they say how much the stage adds on top of the engine. Two floors:

- landing: every landing file read once with its contract schema (contracts.py) and appended,
  as read, to a scratch Delta table: what ingest, validate and silver cannot go below.
- silver aggregate: silver events read once and reduced per customer by one grouped
  aggregation (counts, distinct sessions, a sum, a maximum: the shape of the features job)
  written to a scratch Delta table: what features cannot go below.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.config import Config
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer

SILVER_AGGREGATE = "silver_aggregate"


def read_landing(spark: SparkSession, source: contracts.Source, paths: list[str]) -> DataFrame:
    """The files parsed with the contract schema and nothing more (no lineage, no checks)."""
    reader = spark.read.schema(source.schema)
    if source.fmt == "jsonl":
        return reader.json(paths)
    return reader.option("header", True).csv(paths)


def landing_scan_and_write(spark: SparkSession, config: Config, scratch: str) -> dict[str, int]:
    """Rows appended per source to `<scratch>/<source>` (from the Delta commit's metrics)."""
    rows = {}
    for source in contracts.SOURCES.values():
        landed = files.list_files(spark, tables.landing(config, source.folder))
        paths = [f.path for f in landed if f.size > 0]
        if not paths:
            rows[source.name] = 0
            continue
        target = f"{scratch}/{source.name}"
        tables.append(read_landing(spark, source, paths), target)
        rows[source.name] = tables.last_commit(spark, target).rows("numOutputRows")
    return rows


def customer_aggregate(events: DataFrame) -> DataFrame:
    """One grouped aggregation per customer over silver events."""
    event_type = F.col("event_type")
    return (
        events.where(F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.count_distinct("session_id").alias("sessions"),
            F.count(F.when(event_type == "product_view", 1)).alias("product_views"),
            F.count(F.when(event_type == "add_to_cart", 1)).alias("add_to_carts"),
            F.sum("price").alias("price_sum"),
            F.max("event_ts").alias("last_event_ts"),
        )
    )


def silver_scan_and_aggregate(spark: SparkSession, config: Config, scratch: str) -> int:
    """Customers written to `<scratch>/silver_aggregate`."""
    events = tables.read(spark, tables.table_path(config, Layer.SILVER, "events"))
    target = f"{scratch}/{SILVER_AGGREGATE}"
    tables.append(customer_aggregate(events), target)
    return tables.last_commit(spark, target).rows("numOutputRows")

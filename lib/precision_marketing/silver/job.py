"""silver: the bronze batches validate has passed, minus their quarantined rows -> silver tables.

Every write is a MERGE keyed on the table's business key, so replaying a batch changes nothing:
a run killed between a table's MERGE and its mark merges the same rows again on rerun
(tests/test_crash_recovery.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing.conform import TYPED
from precision_marketing.contracts import SOURCES
from precision_marketing.ingest.read import bronze_schema
from precision_marketing.io import tables, watermarks
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, kill_point, step
from precision_marketing.schemas import silver as silver_schemas
from precision_marketing.schemas.project import conform
from precision_marketing.silver import transforms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SilverTable:
    source: str
    name: str
    keys: tuple[str, ...]
    build: Callable[[JobContext, DataFrame, Callable[[], DataFrame]], DataFrame]
    # MERGE updates a matched row only when this holds (None: always; insert_only: never).
    update_when: str | None = None
    insert_only: bool = False
    partition_by: tuple[str, ...] = ()
    # Delta's change data feed on: a reader keeping an aggregate of it reads what changed.
    change_feed: bool = False


def _events(ctx: JobContext, new: DataFrame, _all: Callable[[], DataFrame]) -> DataFrame:
    return transforms.silver_events(TYPED["events"](new)).repartition("event_date")


def _customers(ctx: JobContext, new: DataFrame, _all: Callable[[], DataFrame]) -> DataFrame:
    salt = ctx.config.pii_salt()
    return transforms.silver_customers(TYPED["crm"](new), salt, ctx.run_date)


def _customer_history(ctx: JobContext, new: DataFrame, _all: Callable[[], DataFrame]) -> DataFrame:
    salt = ctx.config.pii_salt()
    return transforms.silver_customer_history(TYPED["crm"](new), salt, ctx.run_date)


def _order_lines(ctx: JobContext, new: DataFrame, validated: Callable[[], DataFrame]) -> DataFrame:
    # A refund may arrive batches after its sale: rebuild every touched line from all its rows.
    touched = new.select("order_id", "line_no").distinct()
    rows = validated().join(touched, ["order_id", "line_no"], "left_semi")
    money = ctx.config.currency
    typed = transforms.in_reporting_currency(
        TYPED["transactions"](rows), money.reporting, money.rates
    )
    return transforms.silver_order_lines(typed)


def _items(ctx: JobContext, new: DataFrame, _all: Callable[[], DataFrame]) -> DataFrame:
    return transforms.silver_items(TYPED["catalog"](new))


SILVER_TABLES = (
    SilverTable(
        "events",
        "events",
        ("event_id", "event_date"),
        _events,
        insert_only=True,
        partition_by=("event_date",),
    ),
    SilverTable("crm", "customers", ("customer_id",), _customers, "s.updated_at >= t.updated_at"),
    SilverTable(
        "crm",
        "customer_history",
        ("customer_id", "updated_at"),
        _customer_history,
        insert_only=True,
    ),
    SilverTable(
        "transactions", "order_lines", ("order_id", "line_no"), _order_lines, change_feed=True
    ),
    SilverTable("catalog", "items", ("item_id",), _items, "s.updated_at >= t.updated_at"),
)


def run(ctx: JobContext) -> None:
    written = [watermarks.path(ctx.config)] + [
        tables.table_path(ctx.config, Layer.SILVER, t.name) for t in SILVER_TABLES
    ]
    with tables.restored_on_failure(ctx.spark, written):
        for table in SILVER_TABLES:
            build_silver_table(ctx, table)
            create_if_absent(ctx, table)
            if table.change_feed:
                # gold/customer_daily reads order_lines' feed (features/daily.py).
                tables.enable_change_feed(
                    ctx.spark, tables.table_path(ctx.config, Layer.SILVER, table.name)
                )


def create_if_absent(ctx: JobContext, table: SilverTable) -> None:
    """A source that never had rows still gets its silver table, empty, so every later stage
    finds it, with the layer's declared schema (schemas.silver)."""
    path = tables.table_path(ctx.config, Layer.SILVER, table.name)
    if tables.is_delta(ctx.spark, path):
        return
    empty = ctx.spark.createDataFrame([], bronze_schema(SOURCES[table.source]))
    rows = conform(table.build(ctx, empty, lambda: empty), silver_schemas.TABLES[table.name])
    tables.append(rows, path, table.partition_by)
    log.warning("silver %s: its source %s has no rows yet: created empty", table.name, table.source)


def build_silver_table(ctx: JobContext, table: SilverTable) -> None:
    spark, config = ctx.spark, ctx.config
    # Marked per silver table: one source (crm) feeds two of them.
    done = watermarks.get(spark, config, "silver", table.name)
    validated_up_to = watermarks.get(spark, config, "validate", table.source)
    with step(log, f"silver {table.name}") as s:
        if validated_up_to <= done:
            s.rows(new_batches=0)
            return

        def validated(low: int = 0) -> DataFrame:
            """Bronze rows of batches (low, validated_up_to] that were not quarantined."""
            in_range = F.col("_batch_no").between(low + 1, validated_up_to)
            bronze = tables.read(spark, tables.table_path(config, Layer.BRONZE, table.source))
            quarantine_path = tables.table_path(config, Layer.QUARANTINE, table.source)
            good = bronze.where(in_range)
            if tables.is_delta(spark, quarantine_path):
                bad = tables.read(spark, quarantine_path).where(in_range).select("_record_id")
                good = good.join(bad, "_record_id", "left_anti")
            return good

        rows = conform(
            table.build(ctx, validated(done), validated), silver_schemas.TABLES[table.name]
        )
        commit = tables.upsert(
            spark,
            rows,
            tables.table_path(config, Layer.SILVER, table.name),
            keys=table.keys,
            partition_by=table.partition_by,
            update_when=table.update_when,
            insert_only=table.insert_only,
        )
        kill_point(f"silver:merged-{table.name}")
        watermarks.advance(spark, config, "silver", table.name, validated_up_to, ctx.run_id)
        s.rows(
            batches=validated_up_to - done,
            inserted=commit.rows("numOutputRows", "numTargetRowsInserted"),
            updated=commit.rows("numTargetRowsUpdated"),
        )

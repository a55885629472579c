"""gold/customer_daily kept up to date, so a next-day run merges the days that changed instead
of summing the whole order history again (transforms.customer_daily says what a row holds).

The table's last commit records what it was built from (`Built`, in the commit's
userMetadata): the cut (`known_at`) and the versions of silver/order_lines and silver/items it
read. A later run finds the days whose rows can differ:

- lines silver changed since: the change data feed of silver/order_lines (silver turns it on),
  versions (read, now]. Silver rewrites a line whenever a late row, a refund or a correction of
  it arrives, so the feed holds exactly those lines, with the day an updated line was on before
  (its pre-image). silver/order_lines carries no batch marker to filter on, and diffing two
  versions would read the whole table twice;
- lines whose state as known at the cut moved: placed or refunded in [known_at, as_of);
- lines of items whose category changed (category spend).

Every day holding a line of an order so touched is recomputed from all the orders on it and
MERGEd in (rows of those days the recomputation lacks are deleted). The first run, a change
feed that was off for one of the versions (a warehouse written before silver turned it on) or
an unreadable past version rebuild the table instead; a snapshot before known_at (propensity's
past dates) is summed from the lines directly and leaves the table alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.features import transforms
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext

log = logging.getLogger(__name__)

TABLE = "customer_daily"
KEYS = ("customer_id", "order_date")
METADATA_PREFIX = "customer-daily:"


@dataclass(frozen=True)
class Built:
    """What a write of the table was built from, and what it did."""

    known_at: date
    order_lines_version: int
    items_version: int
    mode: str  # "rebuild" or "merge"
    days: tuple[date, ...] = ()  # the days a merge recomputed

    def metadata(self) -> str:
        body = {
            "known_at": self.known_at.isoformat(),
            "order_lines_version": self.order_lines_version,
            "items_version": self.items_version,
            "mode": self.mode,
            "days": [d.isoformat() for d in self.days],
        }
        return METADATA_PREFIX + json.dumps(body, sort_keys=True)

    @staticmethod
    def parse(text: str | None) -> Built | None:
        if not text or not text.startswith(METADATA_PREFIX):
            return None
        body = json.loads(text[len(METADATA_PREFIX) :])
        return Built(
            date.fromisoformat(body["known_at"]),
            int(body["order_lines_version"]),
            int(body["items_version"]),
            str(body["mode"]),
            tuple(date.fromisoformat(d) for d in body["days"]),
        )


@dataclass(frozen=True)
class _Read:
    """A silver table as this run read it: at a pinned version, so what is recorded is what
    was read."""

    path: str
    version: int
    rows: DataFrame

    @staticmethod
    def of(spark: SparkSession, config: Config, name: str) -> _Read:
        table = tables.table_path(config, Layer.SILVER, name)
        version = tables.version(spark, table)
        assert version is not None  # require(ctx, "features") checked the silver tables
        return _Read(table, version, tables.read(spark, table, version))


def path(config: Config) -> str:
    return tables.table_path(config, Layer.GOLD, TABLE)


def last_build(spark: SparkSession, table: str) -> Built | None:
    """The table's last write, from its commit (None: no table, or not written by refresh)."""
    if not tables.is_delta(spark, table):
        return None
    return Built.parse(tables.last_commit(spark, table).user_metadata)


def refresh(ctx: JobContext, as_of: date) -> tuple[DataFrame, Built | None]:
    """customer_daily as known at `as_of`: the table brought there (merged or rebuilt) and read
    back, with what this run wrote (None: nothing to write)."""
    spark, config = ctx.spark, ctx.config
    lines, items = _Read.of(spark, config, "order_lines"), _Read.of(spark, config, "items")
    table = path(config)
    before = last_build(spark, table)
    if before is not None and as_of < before.known_at:
        log.info(
            "features: %s is known at %s, after %s: summed from the order lines instead",
            TABLE,
            before.known_at,
            as_of,
        )
        return transforms.customer_daily(lines.rows, items.rows, as_of), None
    days = None if before is None else _changed_days(spark, before, lines, items, as_of)
    if days is None:
        built = Built(as_of, lines.version, items.version, "rebuild")
        rows = transforms.customer_daily(lines.rows, items.rows, as_of)
        tables.overwrite(rows, table, built.metadata())
    elif days:
        built = Built(as_of, lines.version, items.version, "merge", tuple(days))
        on_days = F.col("order_date").isin(days)
        orders = lines.rows.where(on_days).select("order_id").distinct()
        recomputed = transforms.customer_daily(
            lines.rows.join(orders, "order_id", "left_semi"), items.rows, as_of
        ).where(on_days)
        listed = ", ".join(f"DATE'{d.isoformat()}'" for d in days)
        tables.upsert(
            spark,
            recomputed,
            table,
            keys=KEYS,
            replace_within=f"t.order_date IN ({listed})",
            user_metadata=built.metadata(),
        )
    else:
        # Nothing can differ. The recorded cut and versions stay older, which only widens
        # what the next run looks at.
        built = None
    return tables.read(spark, table), built


def _changed_days(
    spark: SparkSession, before: Built, lines: _Read, items: _Read, as_of: date
) -> list[date] | None:
    """The order days before `as_of` whose rows can differ from the table's (module doc);
    None when the change feed or the old catalog cannot be read: rebuild."""
    start, cut = transforms.as_of_ts(before.known_at), transforms.as_of_ts(as_of)

    def moved(column: str) -> Column:
        return (F.col(column) >= start) & (F.col(column) < cut)

    touched = lines.rows.where(moved("order_ts") | moved("refunded_at")).select("order_id")
    earlier_days = spark.createDataFrame([], "order_date date")
    try:
        if lines.version > before.order_lines_version:
            feed = tables.changes(spark, lines.path, before.order_lines_version, lines.version)
            touched = touched.unionByName(feed.select("order_id"))
            earlier_days = feed.select("order_date")
        if items.version != before.items_version:
            was = tables.read(spark, items.path, before.items_version)
            old, now = (t.select("item_id", "category") for t in (was, items.rows))
            recategorized = now.exceptAll(old).unionByName(old.exceptAll(now)).select("item_id")
            touched = touched.unionByName(
                lines.rows.join(recategorized, "item_id", "left_semi").select("order_id")
            )
        days = (
            lines.rows.join(touched.distinct(), "order_id", "left_semi")
            .select("order_date")
            .unionByName(earlier_days)
            .where(F.col("order_date") < F.lit(as_of))
            .distinct()
        )
        # At most one row per day of history: bounded by the history's length, not by data.
        return sorted(row[0] for row in days.collect())  # days, not rows
    except AnalysisException as e:
        log.warning("features: %s is rebuilt: what changed cannot be read (%s)", TABLE, e)
        return None

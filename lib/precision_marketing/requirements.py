"""Which inputs each stage needs, as data, and the cheap check every stage runs first.

Sources are optional where the science allows (docs/bring-your-own-data.md): a shop without
web events still gets segments and propensity, a catalog of views still gets recommendations.
A stage whose required inputs are absent or empty stops at once with `MissingInputError`
naming what it needs, instead of a Spark stack trace minutes later; the `pipeline` job records
it as `no_input` and goes on. Checks are bounded: a `limit(1)` read, never a full count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, MissingInputError

log = logging.getLogger(__name__)

GUIDE = "docs/bring-your-own-data.md"

# The landing sources and the silver table each one fills.
SOURCE_TABLES: dict[str, str] = {
    "events": "events",
    "crm": "customers",
    "transactions": "order_lines",
    "catalog": "items",
}
SOURCES = tuple(SOURCE_TABLES)
# Every silver table and the source that fills it.
SILVER_SOURCES: dict[str, str] = {
    **{t: s for s, t in SOURCE_TABLES.items()},
    "customer_history": "crm",
}
# The stage that writes each gold/activation table a later stage needs.
PRODUCERS: dict[str, str] = {
    "user_features": "features",
    "segments": "segment",
    "recommendations": "recommend",
    "propensity": "propensity",
    "audiences": "publish",
}


class Rows(StrEnum):
    ANY = "any"  # some row, whatever its date (silver keeps history)
    RUN_DATE = "run date"  # the run date's snapshot (as_of_date = run date)
    UP_TO_RUN_DATE = "up to run date"  # a snapshot on or before the run date (publish pins it)


@dataclass(frozen=True)
class Need:
    """Rows of one table that a stage cannot do without, and why it needs them."""

    layer: Layer
    table: str
    why: str
    rows: Rows = Rows.ANY
    # Only rows matching this count, e.g. product events for recommend (from config).
    where: Callable[[Config], Column] | None = None
    where_text: str = ""

    @property
    def name(self) -> str:
        return f"{self.layer.value}/{self.table}"

    def describe(self, run_date: date) -> str:
        text = self.name
        if self.where_text:
            text += f" {self.where_text}"
        if self.rows is Rows.RUN_DATE:
            text += f" for {run_date}"
        elif self.rows is Rows.UP_TO_RUN_DATE:
            text += f" on or before {run_date}"
        return f"{text} ({self.why})"

    def source(self) -> str | None:
        """The landing source that fills this silver table (None for later layers)."""
        if self.layer is not Layer.SILVER:
            return None
        return SILVER_SOURCES[self.table]


def remedy(group: Sequence[Need], run_date: date) -> str:
    """What provides the rows: a source to map (silver) or an earlier stage to run."""
    sources = list(dict.fromkeys(s for n in group if (s := n.source()) is not None))
    remedies = []
    if sources:
        article = "an" if sources[0][0] in "aeiou" else "a"
        remedies.append(f"map {article} {' or '.join(sources)} source ({GUIDE})")
    for need in group:
        if need.source() is None:
            producer = PRODUCERS.get(need.table, "the stage that writes it")
            remedies.append(f"run {producer} for {run_date} (it needs inputs of its own)")
    return " or ".join(remedies)


@dataclass(frozen=True)
class Requirement:
    """`needs`: groups of alternatives, each group satisfied when any of its tables has rows.
    `reads`: tables the stage reads that must exist but may be empty.
    `sources`: the landing sources the stage's output derives from (shown in the summary)."""

    needs: tuple[tuple[Need, ...], ...] = ()
    reads: tuple[tuple[Layer, str], ...] = ()
    sources: tuple[str, ...] = SOURCES


def _product_events(config: Config) -> Column:
    """The event types recommend turns into interactions: its configured weights' keys."""
    return F.col("event_type").isin(*sorted(config.recommend.event_weights))


def _silver(table: str, why: str) -> Need:
    return Need(Layer.SILVER, table, why)


ORDER_LINES = _silver("order_lines", "purchases")
PRODUCT_EVENTS = Need(
    Layer.SILVER,
    "events",
    "product events",
    where=_product_events,
    where_text="with event_type in recommend.event_weights",
)
SILVER_READS = tuple((Layer.SILVER, t) for t in SOURCE_TABLES.values())

REQUIREMENTS: dict[str, Requirement] = {
    # Every source is optional up to silver: an absent one flows through as an empty batch.
    "ingest": Requirement(),
    "validate": Requirement(),
    "silver": Requirement(),
    # Its customer base is the CRM plus the active customers the CRM does not list
    # (features.transforms.customer_base): any one of the three sources gives it customers.
    "features": Requirement(
        needs=(
            (
                _silver("customer_history", "customers to describe"),
                _silver("events", "behaviour"),
                _silver("order_lines", "purchases"),
            ),
        ),
        reads=tuple(
            (Layer.SILVER, t) for t in ("events", "customer_history", "order_lines", "items")
        ),
    ),
    "segment": Requirement(
        needs=((Need(Layer.GOLD, "user_features", "customers to cluster", Rows.RUN_DATE),),),
    ),
    "recommend": Requirement(
        needs=((ORDER_LINES, PRODUCT_EVENTS),),
        reads=SILVER_READS,
    ),
    # Its feature snapshots are built on demand (propensity.build_missing_features).
    "propensity": Requirement(
        needs=((_silver("order_lines", "purchases to label"),),),
        reads=tuple((Layer.SILVER, t) for t in ("customers", "order_lines", "items")),
    ),
    # Segments, recommendations and propensity are optional (activation/manifest.SOURCES): a
    # campaign selecting on one that has no snapshot matches nobody, with a warning.
    "publish": Requirement(
        needs=(
            (_silver("customers", "contact consent"),),
            (Need(Layer.GOLD, "user_features", "the customer base", Rows.UP_TO_RUN_DATE),),
        ),
        reads=((Layer.SILVER, "items"),),
    ),
    "measure": Requirement(
        needs=(
            (Need(Layer.ACTIVATION, "audiences", "published campaigns to measure"),),
            (_silver("order_lines", "purchases to count conversions"),),
        ),
        sources=("transactions",),
    ),
    # Any scoring to monitor; each missing model (no recommendations on a transactions-only
    # shop) and each figure not measurable yet is said in the log, not fatal.
    "monitor": Requirement(
        needs=(
            (
                Need(Layer.GOLD, "propensity", "scorings to monitor", Rows.UP_TO_RUN_DATE),
                Need(Layer.GOLD, "recommendations", "scorings to monitor", Rows.UP_TO_RUN_DATE),
                Need(Layer.GOLD, "segments", "scorings to monitor", Rows.UP_TO_RUN_DATE),
            ),
        ),
    ),
}


def _missing(spark: SparkSession, config: Config, need: Need, run_date: date) -> str | None:
    """Why `need` is not met ('absent', 'empty', ...), or None when it is."""
    path = tables.table_path(config, need.layer, need.table)
    if not tables.is_delta(spark, path):
        return "absent"
    df: DataFrame = tables.read(spark, path)
    if need.where is not None:
        df = df.where(need.where(config))
    if need.rows is Rows.RUN_DATE:
        df = df.where(F.col("as_of_date") == F.lit(run_date))
    elif need.rows is Rows.UP_TO_RUN_DATE:
        df = df.where(F.col("as_of_date") <= F.lit(run_date))
    if df.limit(1).count() > 0:
        return None
    if need.rows is Rows.RUN_DATE:
        return f"has no rows for {run_date}"
    if need.rows is Rows.UP_TO_RUN_DATE:
        return f"has no snapshot on or before {run_date}"
    return "has no such rows" if need.where is not None else "empty"


def _state(subject: str, reason: str) -> str:
    """'it is empty', 'silver/events has no such rows'."""
    return f"{subject} {reason}" if reason.startswith("has ") else f"{subject} is {reason}"


def _group_problem(
    spark: SparkSession, config: Config, stage: str, group: Sequence[Need], run_date: date
) -> str | None:
    reasons = []
    for need in group:
        reason = _missing(spark, config, need, run_date)
        if reason is None:
            return None
        reasons.append(reason)
    wanted = " or ".join(n.describe(run_date) for n in group)
    if len(group) == 1:
        state = _state("it", reasons[0])
    else:
        state = "; ".join(_state(n.name, r) for n, r in zip(group, reasons, strict=True))
    return f"{stage} needs {wanted}; {state}: {remedy(group, run_date)}"


def problem(spark: SparkSession, config: Config, stage: str, run_date: date) -> str | None:
    """The first unmet input of `stage` as one sentence, or None when it can run."""
    requirement = REQUIREMENTS.get(stage)
    if requirement is None:
        return None
    for layer, table in requirement.reads:
        if not tables.is_delta(spark, tables.table_path(config, layer, table)):
            return f"{stage} reads {layer.value}/{table}; it is absent: run silver first"
    for group in requirement.needs:
        found = _group_problem(spark, config, stage, group, run_date)
        if found is not None:
            return found
    return None


def require(ctx: JobContext, stage: str) -> None:
    """Stops `stage` before any work when an input it needs is absent or empty."""
    found = problem(ctx.spark, ctx.config, stage, ctx.run_date)
    if found is not None:
        raise MissingInputError(found)


def sources_with_rows(spark: SparkSession, config: Config) -> set[str]:
    """The landing sources whose silver table has a row (one bounded read each)."""
    present = set()
    for source, table in SOURCE_TABLES.items():
        path = tables.table_path(config, Layer.SILVER, table)
        if tables.is_delta(spark, path) and tables.read(spark, path).limit(1).count() > 0:
            present.add(source)
    return present


def stage_sources(stage: str) -> tuple[str, ...]:
    """The landing sources a stage's output derives from (none known for other stages)."""
    requirement = REQUIREMENTS.get(stage)
    return () if requirement is None else requirement.sources

"""How much history a run reads: the one place a window's start is computed and its cost told.

`history.days` is the default of every lookback (a stage's own `lookback_days` wins when set);
null reads everything silver holds before the run date, so replaying old data needs no change.
Whenever a window leaves data out, one log line and the stage's metrics say how much.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.config import Config, ConfigError

log = logging.getLogger(__name__)


def lookback_days(config: Config, own_days: int | None = None) -> int | None:
    """A stage's own lookback when set, else `history.days` (None: no lower bound)."""
    days = config.history.days if own_days is None else own_days
    if days is not None and days < 1:
        raise ConfigError(f"a history window must be at least 1 day, got {days}")
    return days


def start_of(run_date: date, days: int | None) -> date | None:
    """First day inside a window of `days` days before `run_date`; None when unbounded."""
    return None if days is None else run_date - timedelta(days=days)


def window_start(config: Config, run_date: date, own_days: int | None = None) -> date | None:
    """The first day a run reads (None: all history): `start_of` the effective lookback."""
    return start_of(run_date, lookback_days(config, own_days))


def epoch_seconds(day: date) -> float:
    """Midnight UTC of `day` as epoch seconds: the exclusive upper bound of "before day"."""
    return datetime.combine(day, time(), tzinfo=UTC).timestamp()


def before(ts: Column, day_col: Column, as_of: date) -> Column:
    """Strictly before midnight UTC of `as_of`: what a run on `as_of` may see (the date test
    prunes partitions)."""
    return (day_col < F.lit(as_of)) & (ts.cast("double") < F.lit(epoch_seconds(as_of)))


def in_window(ts: Column, day_col: Column, as_of: date, lookback_days: int | None) -> Column:
    """`before` as_of and at most `lookback_days` old, when given."""
    start = start_of(as_of, lookback_days)
    if start is None:
        return before(ts, day_col, as_of)
    return (
        before(ts, day_col, as_of)
        & (day_col >= F.lit(start))
        & (ts.cast("double") >= F.lit(epoch_seconds(start)))
    )


@dataclass(frozen=True)
class LeftOut:
    """What a window left out of the rows before the run date."""

    rows: int | None  # all rows before the run date; None when nothing was counted
    rows_dropped: int
    customers_dropped: int  # customers with rows before the run date but none in the window

    @property
    def share(self) -> float:
        return self.rows_dropped / self.rows if self.rows else 0.0


NOTHING_LEFT_OUT = LeftOut(None, 0, 0)


def left_out(before_run: DataFrame, ts_col: str, start: date | None) -> LeftOut:
    """Counts the rows of `before_run` (all before the run date) older than `start`, and the
    customers left with none: one grouped aggregate, skipped when the window is unbounded."""
    if start is None:
        return NOTHING_LEFT_OUT
    old = (F.col(ts_col).cast("double") < F.lit(epoch_seconds(start))).cast("long")
    per_customer = before_run.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("n"), F.sum(old).alias("old")
    )
    row = per_customer.agg(
        F.sum("n").alias("rows"),
        F.sum("old").alias("dropped"),
        F.count(F.when(F.col("old") == F.col("n"), 1)).alias("customers"),
    ).first()  # one row
    assert row is not None
    return LeftOut(int(row["rows"] or 0), int(row["dropped"] or 0), int(row["customers"] or 0))


def log_left_out(stage: str, what: str, start: date | None, run_date: date, found: LeftOut) -> None:
    """One line per window: what it left out, or that it reads all history."""
    last = run_date - timedelta(days=1)
    if start is None:
        log.info("%s: history window all..%s leaves nothing out (%s)", stage, last, what)
        return
    log.info(
        "%s: history window %s..%s leaves out %s of %s %s (%.1f%%) and %s customers",
        stage,
        start,
        last,
        f"{found.rows_dropped:,}",
        f"{found.rows or 0:,}",
        what,
        100.0 * found.share,
        f"{found.customers_dropped:,}",
    )

"""Typed views of bronze rows, shared by validation (rules are stated on typed columns) and silver.

Parsing uses the try_* functions: under Spark's ANSI mode a plain cast of a bad value fails the
whole job, while here a bad value becomes null and a validation rule names it.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.contracts import IDENTIFIED_EVENT_TYPES

# An ISO time's offset (Z, +01, +0100, +01:00) at its end.
HAS_OFFSET = r"(Z|[+-]\d{2}(:?\d{2})?)$"


def parse_timestamp(text: Column) -> Column:
    """ISO-8601 with an offset (2026-03-05T14:22:31.123+01:00) -> a UTC-normalized timestamp.

    A time without an offset is null (its *_time_valid rule quarantines it), never read as the
    session's zone: ingest already gave it the offset of its source's `time_zone`, if one is set.
    """
    return F.when(text.rlike(HAS_OFFSET), F.try_to_timestamp(text))


def parse_date(text: Column) -> Column:
    return F.try_to_date(text, "yyyy-MM-dd")


def typed_events(bronze: DataFrame) -> DataFrame:
    """Typed times, and whether an event only a known customer can cause names one (a flag:
    a rule on it needs no row condition, so Great Expectations counts every batch)."""
    event_ts = parse_timestamp(F.col("event_time"))
    anonymous = F.col("event_type").isin(*IDENTIFIED_EVENT_TYPES) & F.col("customer_id").isNull()
    return bronze.withColumns(
        {
            "event_ts": event_ts,
            "event_date": F.to_date(event_ts),
            "customer_if_identified": F.coalesce(~anonymous, F.lit(True)),
        }
    )


def typed_crm(bronze: DataFrame) -> DataFrame:
    return bronze.withColumns(
        {
            "birth_dt": parse_date(F.col("birth_date")),
            "signup_dt": parse_date(F.col("signup_date")),
            "updated_ts": parse_timestamp(F.col("updated_at")),
        }
    )


def typed_transactions(bronze: DataFrame) -> DataFrame:
    """Typed times, and a refund's order_id on refund rows only (the reference to its sale)."""
    return bronze.withColumns(
        {
            "order_ts": parse_timestamp(F.col("order_time")),
            "refunded_order_id": F.when(F.col("status") == "refunded", F.col("order_id")),
        }
    )


def typed_catalog(bronze: DataFrame) -> DataFrame:
    return bronze.withColumns({"updated_ts": parse_timestamp(F.col("updated_at"))})


TYPED: dict[str, Callable[[DataFrame], DataFrame]] = {
    "events": typed_events,
    "crm": typed_crm,
    "transactions": typed_transactions,
    "catalog": typed_catalog,
}

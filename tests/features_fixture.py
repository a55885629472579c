"""A tiny hand-built silver layer for the features tests, with hand-computed expectations.

as_of = 2026-06-30. Rows dated on or after it are there on purpose: they must change nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import SparkSession

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.schemas import silver

AS_OF = date(2026, 6, 30)


EVENTS = silver.EVENTS
CUSTOMERS = silver.CUSTOMER_HISTORY
ORDER_LINES = silver.ORDER_LINES
ITEMS = silver.ITEMS


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(
    event_id: str,
    device: str,
    customer: str | None,
    session: str,
    event_type: str,
    when: str,
    platform: str = "web",
    item: str | None = None,
    category: str | None = None,
    campaign: str | None = None,
) -> tuple[Any, ...]:
    at = ts(when)
    return (
        event_id,
        device,
        customer,
        session,
        event_type,
        item,
        category,
        None,
        "q" if event_type == "search" else None,
        at,
        at.date(),
        platform,
        "google" if campaign else None,
        "cpc" if campaign else None,
        campaign,
        1,
    )


# Birth years: on as_of (a 1 July birthday, 2026-06-30) c1 is 34, c2 is 33.
BIRTH_YEARS = {"c1": 1991, "c2": 1992}


def crm(
    customer: str, signup: str, tier: str, updated: str, band: str = "25-34"
) -> tuple[Any, ...]:
    """A customer_history version; `band` is the age band silver stored on the day it ran."""
    return (
        customer,
        "e" + customer,
        None,
        band,
        "F",
        "west",
        date.fromisoformat(signup),
        tier,
        True,
        False,
        True,
        ts(updated),
        BIRTH_YEARS.get(customer),
    )


def line(
    order: str,
    line_no: int,
    customer: str,
    item: str,
    quantity: int,
    unit_price: float,
    when: str,
    discount: float = 0.0,
    refunded: int = 0,
    refunded_at: str | None = None,
    status: str = "completed",
    channel: str = "web",
) -> tuple[Any, ...]:
    gross = quantity * unit_price - discount
    net_q = 0 if status == "cancelled" else quantity - refunded
    at = ts(when)
    return (
        order,
        line_no,
        customer,
        item,
        quantity,
        refunded,
        net_q,
        unit_price,
        discount,
        gross,
        round(gross * net_q / quantity, 2),
        "EUR",
        "EUR",
        unit_price,
        at,
        at.date(),
        ts(refunded_at) if refunded_at else None,
        channel,
        None,
        status,
    )


BASE_EVENTS = [
    event("e1", "d1", "c1", "s1", "product_view", "2026-06-20T10:00", "web", "i1", "electronics"),
    event("e2", "d1", "c1", "s1", "add_to_cart", "2026-06-20T10:01", "web", "i1", "electronics"),
    event("e3", "d1", "c1", "s1", "purchase", "2026-06-20T10:02", "web", "i1", "electronics"),
    # Anonymous on d1, which c1 logs in on: attributed to c1.
    event("e4", "d1", None, "s2", "product_view", "2026-06-25T18:00", "ios", "i2", "books"),
    event("e5", "d1", None, "s2", "search", "2026-06-25T18:01", "ios"),
    event("e6", "d1", "c1", "m1", "email_open", "2026-06-28T07:00"),
    event("e7", "d1", "c1", "s3", "campaign_click", "2026-06-29T10:00", campaign="sale"),
    event("e8", "d1", "c1", "s3", "product_view", "2026-06-29T10:01", "web", "i3", "home"),
    # Exactly at as_of midnight: excluded.
    event("e9", "d1", "c1", "s4", "product_view", "2026-06-30T00:00", "web", "i1", "electronics"),
    # A device that never logs in: dropped.
    event("e10", "d9", None, "s9", "product_view", "2026-06-10T10:00", "web", "i1", "electronics"),
    event("e11", "d2", "c2", "s5", "product_view", "2026-05-01T20:00", "android", "i2", "books"),
    event("e12", "d2", "c2", "s5", "product_view", "2026-05-01T20:05", "android", "i2", "books"),
    event("e13", "d2", "c2", "s5", "add_to_cart", "2026-05-01T20:06", "android", "i2", "books"),
    # d3 logs in as c2 only after as_of: its earlier anonymous visit stays unattributed.
    event("e14", "d3", None, "s6", "page_view", "2026-06-01T09:00"),
    event("e15", "d3", "c2", "s7", "page_view", "2026-07-01T09:00"),
]  # fmt: skip

BASE_CRM = [
    crm("c1", "2026-01-01", "silver", "2026-05-01T00:00"),
    crm("c1", "2026-01-01", "gold", "2026-06-29T10:00"),
    crm("c1", "2026-01-01", "platinum", "2026-06-30T08:00"),  # after as_of
    crm("c2", "2026-03-01", "none", "2026-03-01T00:00"),
    crm("c3", "2026-06-30", "none", "2026-06-29T00:00"),  # signs up on as_of: not a customer yet
    crm("c4", "2026-01-01", "none", "2026-07-01T00:00"),  # first known after as_of
    crm("c5", "2025-06-30", "none", "2025-06-30T00:00"),  # no activity at all
]

BASE_LINES = [
    line("o1", 1, "c1", "i1", 1, 100.0, "2026-06-20T10:02"),
    line("o2", 1, "c1", "i2", 2, 10.0, "2026-06-01T12:00", discount=2.0, refunded=1,
         refunded_at="2026-06-10T00:00", status="partially_refunded"),
    line("o2", 2, "c1", "i3", 1, 40.0, "2026-06-01T12:00", channel="store"),
    # Refunded after as_of: still fully paid as of as_of.
    line("o3", 1, "c1", "i3", 1, 40.0, "2026-03-01T09:00", refunded=1,
         refunded_at="2026-07-02T00:00", status="refunded"),
    line("o4", 1, "c1", "i1", 1, 100.0, "2026-06-25T11:00", status="cancelled"),
    line("o5", 1, "c1", "i1", 1, 100.0, "2026-06-30T01:00"),  # after as_of
    line("o6", 1, "c1", "i2", 1, 10.0, "2025-01-15T08:00"),  # older than 365 days
    line("o7", 1, "c2", "i2", 1, 10.0, "2026-04-15T15:00"),
    line("o8", 1, "c3", "i2", 1, 10.0, "2026-06-15T15:00"),  # c3 is not a customer yet
]  # fmt: skip

BASE_ITEMS = [
    ("i1", "Voltix Pro", "electronics", "Voltix", 100.0, True, ts("2026-01-01T00:00")),
    ("i2", "Penfold novel", "books", "Penfold", 10.0, True, ts("2026-01-01T00:00")),
    ("i3", "Casalo lamp", "home", "Casalo", 40.0, True, ts("2026-01-01T00:00")),
]

# Rows on or after as_of that would change features if they leaked in.
LATE_EVENTS = [
    event("x1", "d9", "c2", "s10", "page_view", "2026-06-30T00:00"),  # claims d9's past visit
    event("x2", "d1", None, "s11", "add_to_cart", "2026-07-03T12:00", "web", "i1", "electronics"),
    event("x3", "d2", "c2", "s12", "email_open", "2026-06-30T06:00"),
    event("x4", "d5", "c5", "s13", "product_view", "2026-07-01T06:00", "web", "i2", "books"),
]  # fmt: skip
LATE_CRM = [
    crm("c2", "2026-03-01", "platinum", "2026-06-30T00:00"),
    crm("c5", "2025-06-30", "gold", "2026-08-01T00:00"),
]
# The same CRM versions as silver stores them when it first runs after as_of (a backfill, as
# for propensity's past snapshots): c1 has turned 35 by then, and the stored band says so.
LATE_STORED_CRM = [
    crm("c1", "2026-01-01", "silver", "2026-05-01T00:00", band="35-44"),
    crm("c1", "2026-01-01", "gold", "2026-06-29T10:00", band="35-44"),
    crm("c1", "2026-01-01", "platinum", "2026-06-30T08:00", band="35-44"),
    *(row for row in BASE_CRM if row[0] != "c1"),
]
LATE_LINES = [
    line("o9", 1, "c5", "i1", 3, 100.0, "2026-06-30T00:00"),
    line("o10", 1, "c2", "i1", 1, 100.0, "2026-07-05T00:00"),
]


def write_silver(
    spark: SparkSession,
    config: Config,
    events: list[tuple[Any, ...]],
    crm_rows: list[tuple[Any, ...]],
    lines: list[tuple[Any, ...]],
    items: list[tuple[Any, ...]] = BASE_ITEMS,
) -> None:
    frames = {
        "events": spark.createDataFrame(events, EVENTS),
        "customer_history": spark.createDataFrame(crm_rows, CUSTOMERS),
        "order_lines": spark.createDataFrame(lines, ORDER_LINES),
        "items": spark.createDataFrame(items, ITEMS),
    }
    for name, df in frames.items():
        path = tables.table_path(config, Layer.SILVER, name)
        df.write.format("delta").mode("overwrite").save(path)

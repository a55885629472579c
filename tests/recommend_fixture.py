"""A tiny hand-built silver world for the recommend stage (written as Delta under a warehouse).

Two taste groups over nine catalog items, run date 2026-06-30 (tests.support.RUN_DATE):
- C1..C3 view home items H1..H4, C4..C6 view book items B1..B4; everyone views X9, the most
  viewed item, which is *inactive* (it must never be recommended).
- N10 is an active home item nobody touched: no ALS factors, so content neighbours.
- C1 bought H1 (kept: never recommended to C1); C2 bought H2 but refunded it (not excluded);
  C5 and C6 bought B1 and B2 together (a bought-together rule).
- C7 is in the CRM only (cold start); C8 signs up after the run date (not an active customer).
- Every group item is touched by all three group customers; summed decayed confidence ranks the
  popular lists: B2 11.64 > B1 9.64 > B3 7.86 > H3 7.78 > H1 5.60 > H2 4.40 > H4, B4 4.33.
- Every taste customer also views one item of its group in the last week before the run
  date, which is what the time-split evaluation judges.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pyspark.sql import SparkSession
from pyspark.sql.types import (
    StructType,
)

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.schemas import gold, silver
from precision_marketing.schemas.project import project

EVENTS = StructType(silver.EVENTS.fields[:12])  # up to platform
ORDER_LINES = project(
    silver.ORDER_LINES,
    "order_id",
    "line_no",
    "customer_id",
    "item_id",
    "quantity",
    "refunded_quantity",
    "net_quantity",
    "unit_price",
    "order_ts",
    "order_date",
    "status",
)
ITEMS = silver.ITEMS
CUSTOMERS = project(silver.CUSTOMERS, "customer_id", "signup_date", "loyalty_tier")
SEGMENTS = project(
    gold.SEGMENTS, "customer_id", "segment_id", "segment_name", "model_version", "as_of_date"
)

RUN_DATE = date(2026, 6, 30)
HOME = ["H1", "H2", "H3", "H4"]
BOOKS = ["B1", "B2", "B3", "B4"]
INACTIVE = "X9"
NEW_ITEM = "N10"
HOME_CUSTOMERS = ["C1", "C2", "C3"]
BOOK_CUSTOMERS = ["C4", "C5", "C6"]
COLD = "C7"
FUTURE_SIGNUP = "C8"
ACTIVE_CUSTOMERS = [*HOME_CUSTOMERS, *BOOK_CUSTOMERS, COLD]
ACTIVE_ITEMS = [*HOME, *BOOKS, NEW_ITEM]


def ts(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def event(n: int, customer: str | None, kind: str, item: str | None, day: date) -> tuple:
    return (f"e{n:04d}", f"d-{customer}", customer, f"s{n}", kind, item, None, None, None,
            ts(day), day, "web")  # fmt: skip


def build_events() -> list[tuple]:
    rows: list[tuple] = []
    for group, items in ((HOME_CUSTOMERS, HOME), (BOOK_CUSTOMERS, BOOKS)):
        for c_no, customer in enumerate(group):
            # Before the evaluation cutoff (2026-06-23): three of the four group items + X9.
            for i_no, item in enumerate(items):
                if i_no == (c_no + 1) % 4:
                    continue
                day = RUN_DATE - timedelta(days=10 + i_no)
                rows.append(event(len(rows), customer, "product_view", item, day))
            rows.append(
                event(len(rows), customer, "product_view", INACTIVE, RUN_DATE - timedelta(12))
            )
            rows.append(
                event(len(rows), customer, "product_view", INACTIVE, RUN_DATE - timedelta(11))
            )
            # After the cutoff: the group item not seen before.
            held_out = items[(c_no + 1) % 4]
            day = RUN_DATE - timedelta(3)
            rows.append(event(len(rows), customer, "add_to_cart", held_out, day))
    # Noise that must not count: anonymous, unweighted type, on the run date itself.
    rows.append(event(len(rows), None, "product_view", "H1", RUN_DATE - timedelta(2)))
    rows.append(event(len(rows), "C1", "page_view", "B1", RUN_DATE - timedelta(2)))
    rows.append(event(len(rows), "C1", "product_view", "B3", RUN_DATE))
    return rows


def build_order_lines() -> list[tuple]:
    def line(order: str, no: int, customer: str, item: str, days_ago: int, status: str) -> tuple:
        day = RUN_DATE - timedelta(days=days_ago)
        refunded = 1 if status == "refunded" else 0
        net = 0 if status in ("refunded", "cancelled") else 1
        return (order, no, customer, item, 1, refunded, net, 10.0, ts(day), day, status)

    return [
        line("O1", 1, "C1", "H1", 20, "completed"),
        line("O2", 1, "C2", "H2", 20, "refunded"),
        line("O3", 1, "C5", "B1", 15, "completed"),
        line("O3", 2, "C5", "B2", 15, "completed"),
        line("O4", 1, "C6", "B1", 14, "completed"),
        line("O4", 2, "C6", "B2", 14, "completed"),
        line("O5", 1, "C4", "B3", 16, "completed"),
        line("O6", 1, "C3", "H3", 17, "completed"),
    ]


def build_items() -> list[tuple]:
    updated = ts(date(2026, 1, 1))
    rows = [(i, f"Casalo Lamp {i}", "home", "Casalo", 20.0 + n * 5, True, updated)
            for n, i in enumerate(HOME)]  # fmt: skip
    rows += [(i, f"Penfold Novel {i}", "books", "Penfold", 10.0 + n, True, updated)
             for n, i in enumerate(BOOKS)]  # fmt: skip
    rows.append((INACTIVE, "Casalo Vase X9", "home", "Casalo", 30.0, False, updated))
    rows.append((NEW_ITEM, "Casalo Lamp N10", "home", "Casalo", 26.0, True, updated))
    return rows


def build_customers() -> list[tuple]:
    rows = [(c, date(2025, 1, 1), "silver") for c in [*HOME_CUSTOMERS, *BOOK_CUSTOMERS, COLD]]
    rows.append((FUTURE_SIGNUP, date(2026, 7, 5), "none"))
    return rows


def shifted(rows: list[tuple], run_date: date) -> list[tuple]:
    """`rows` with every date and timestamp moved so the history ends before `run_date`."""
    delta = run_date - RUN_DATE
    return [tuple(v + delta if isinstance(v, date) else v for v in row) for row in rows]


def write_silver(spark: SparkSession, config: Config, run_date: date = RUN_DATE) -> None:
    """Writes the four silver tables of the fixture under config's warehouse (the whole
    history moved to end before `run_date`, e.g. a replay of old data)."""
    for name, rows, schema in (
        ("events", build_events(), EVENTS),
        ("order_lines", build_order_lines(), ORDER_LINES),
        ("items", build_items(), ITEMS),
        ("customers", build_customers(), CUSTOMERS),
    ):
        df = spark.createDataFrame(shifted(rows, run_date), schema)
        df.write.format("delta").mode("overwrite").save(
            tables.table_path(config, Layer.SILVER, name)
        )


def write_segments(
    spark: SparkSession, config: Config, as_of_dates: tuple[date, ...] = (RUN_DATE,)
) -> None:
    """gold/segments snapshots: home lovers and the cold customer in segment 1, book lovers
    in 2."""
    rows = []
    for day in as_of_dates:
        rows += [(c, 1, "home", "seg-v1", day) for c in [*HOME_CUSTOMERS, COLD]]
        rows += [(c, 2, "books", "seg-v1", day) for c in BOOK_CUSTOMERS]
    spark.createDataFrame(rows, SEGMENTS).write.format("delta").mode("overwrite").save(
        tables.table_path(config, Layer.GOLD, "segments")
    )

"""A tiny silver world with planted propensity, for the propensity job (run date 2026-06-30).

The test config uses H = 14 days, trains on the snapshot of 2026-05-19 (run date - 42) and
validates on 2026-06-16 (run date - 14). Days below are offsets before the run date.

- FREQUENT (20): a 20 EUR web order every four days, on offsets 1, 5, ..., 117 (three days before
  each training / validation as_of date): they buy in every label window.
- RECENT (20): one 50 EUR order the day before each of those as_of dates (offsets 43 and 15),
  nothing in the label windows. The most recent buyers of all, so a recency ranking puts them
  first: a recency baseline ranks every non-buyer of this group above every real buyer.
- BROWSERS (19): a product view now and then, never an order; except that BOUNDARY (B00)
  orders and views exactly at the training as_of instant, which is in its label window and in
  none of its features.
- LATE_CRM: signed up long ago but first known to the CRM after the run date: an active
  customer without a feature row (scored from imputed features).
- FUTURE: signs up after the run date: not an active customer.

Every order has a purchase event, every customer a product view on offsets 60 and 30, so the
feature snapshots see visits for everyone. Loyalty tiers rotate over all groups: they carry no
signal.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from precision_marketing import models
from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.schemas import silver
from tests import features_fixture as ff
from tests.support import make_config, run_stage

RUN_DATE = date(2026, 6, 30)
TRAIN_AS_OF = date(2026, 5, 19)
VALIDATION_AS_OF = date(2026, 6, 16)
FREQUENT = [f"F{i:02d}" for i in range(20)]
RECENT = [f"R{i:02d}" for i in range(20)]
BROWSERS = [f"B{i:02d}" for i in range(19)]
BOUNDARY = "B00"
LATE_CRM = "L00"
FUTURE = "Z00"
SCORED = [*FREQUENT, *RECENT, *BROWSERS, LATE_CRM]
TIERS = ["none", "silver", "gold"]
ITEMS = ff.BASE_ITEMS


def at(offset: int, hour: int = 12) -> str:
    """ISO timestamp `offset` days before the run date, at `hour` UTC."""
    day = RUN_DATE - timedelta(days=offset)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M")


def order_offsets(customer: str) -> list[int]:
    if customer in FREQUENT:
        return list(range(1, 120, 4))
    if customer in RECENT:
        return [43, 15]
    return []


def build() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(events, crm rows, order lines) of the world."""
    events: list[tuple[Any, ...]] = []
    crm: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    for n, customer in enumerate([*FREQUENT, *RECENT, *BROWSERS]):
        crm.append(ff.crm(customer, "2025-01-01", TIERS[n % 3], "2025-01-01T00:00"))
        device = f"d-{customer}"
        for offset in (60, 30):
            events.append(
                ff.event(f"v{customer}{offset}", device, customer, f"s{customer}{offset}",
                         "product_view", at(offset, 9), "web", "i2", "books")
            )  # fmt: skip
        price = 20.0 if customer in FREQUENT else 50.0
        for offset in order_offsets(customer):
            order = f"o{customer}{offset:03d}"
            lines.append(ff.line(order, 1, customer, "i2", 1, price, at(offset)))
            events.append(
                ff.event(f"p{customer}{offset}", device, customer, f"c{customer}{offset}",
                         "purchase", at(offset), "web", "i2", "books")
            )  # fmt: skip
    boundary = f"{TRAIN_AS_OF.isoformat()}T00:00"
    lines.append(ff.line("oB00", 1, BOUNDARY, "i2", 1, 50.0, boundary))
    events.append(ff.event("xB00", f"d-{BOUNDARY}", BOUNDARY, "sB00", "product_view", boundary,
                           "ios", "i2", "books"))  # fmt: skip
    crm.append(ff.crm(LATE_CRM, "2025-01-01", "none", f"{RUN_DATE + timedelta(days=1)}T00:00"))
    crm.append(ff.crm(FUTURE, f"{RUN_DATE + timedelta(days=5)}", "none", at(3)))
    return events, crm, lines


def write_silver(spark: SparkSession, config: Config) -> None:
    """silver events, customer_history, order_lines, items and customers (current CRM state:
    one row per customer here)."""
    events, crm, lines = build()
    ff.write_silver(spark, config, events, crm, lines, ITEMS)
    current = spark.createDataFrame(crm, ff.CUSTOMERS).select(*silver.CUSTOMERS.fieldNames())
    current.write.format("delta").mode("overwrite").save(
        tables.table_path(config, Layer.SILVER, "customers")
    )


# The modules whose fixtures start from the first fit: their tests run in one test process
# (tests/conftest.py), which fits once and copies the warehouse for each of them.
USED_BY = ("test_propensity_job.py", "test_registry.py")

_first_fit: dict[str, Path] = {}


def shared_by(nodeid: str) -> str | None:
    """The scheduling group of a test that uses the first fit (tests/conftest.py)."""
    return "propensity_first_fit" if nodeid.split("::")[0].endswith(USED_BY) else None


def fitted(
    spark: SparkSession, factory: pytest.TempPathFactory, name: str, *overrides: str
) -> Config:
    """A test config on a new directory (with `overrides`), this world in silver, and
    one propensity run for the run date.

    Overrides that leave the fit as it is (models.NOT_FITTED: cadence, tolerance) get a copy of
    the process's one first fit. Tables keep no absolute path outside the ingest ledger (none
    here); the model's params.json names its inputs by path, the first fit's, until a rerun.
    """
    directory = factory.mktemp(name)
    config = make_config(directory, *overrides)
    if not all(_leaves_the_fit(o) for o in overrides):
        _fit(spark, config)
        return config
    if "root" not in _first_fit:
        root = factory.mktemp("propensity_first_fit")
        _fit(spark, make_config(root))
        _first_fit["root"] = root
    shutil.copytree(_first_fit["root"] / "warehouse", directory / "warehouse")
    return config


def _leaves_the_fit(override: str) -> bool:
    return override.partition("=")[0].rsplit(".", 1)[-1] in models.NOT_FITTED


def _fit(spark: SparkSession, config: Config) -> None:
    write_silver(spark, config)
    run_stage(spark, config, "propensity", RUN_DATE)

"""Next-day runs: features merged into gold/customer_daily equal a full rebuild, row for row.

100 generated customers: the pipeline's first stages run on the history (run date D), then
`generate --next-day` lands day D, and beside it a shop's correction file: a late store order
dated D - 3 and a refund, on D, of an order placed on D - 5 or before. Ingest, validate and
silver take them as one batch, and features run on D + 1 incrementally. A full rebuild of the
same snapshot must equal it. (On 100 customers the generator's own late rows are rare.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.features import daily, transforms
from precision_marketing.generate import next_day
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from tests.support import RUN_DATE, make_config, run_stage

DAY = RUN_DATE  # the landed day: the history ends the day before the first run date
NEXT = RUN_DATE + timedelta(days=1)
LATE_DAY = DAY - timedelta(days=3)  # the late store order's day
REFUNDED_BY = DAY - timedelta(days=5)  # the order refunded on DAY: the last placed by then
FIRST_STAGES = ("ingest", "validate", "silver")


@dataclass(frozen=True)
class NextDay:
    config: Config
    incremental: DataFrame  # gold/user_features on NEXT from the merged customer_daily
    built: daily.Built  # what the incremental run's write of customer_daily recorded
    lines_before: DataFrame  # silver/order_lines as the first run read it
    truth: dict[str, int]  # ground_truth/next_days' row for DAY
    refunded: tuple[str, int, date]  # order_id, line_no and day of the line refunded on DAY


def _land_corrections(spark: SparkSession, config: Config) -> tuple[str, int, date]:
    """A transactions file as a shop sends corrections: a store order of LATE_DAY uploaded late
    and a refund of one unit of the last completed line placed by REFUNDED_BY."""
    lines = tables.read(spark, tables.table_path(config, Layer.SILVER, "order_lines"))
    sale = (
        lines.where(
            (F.col("order_date") <= F.lit(REFUNDED_BY))
            & (F.col("order_date") != F.lit(LATE_DAY))
            & (F.col("status") == "completed")
            & F.col("customer_id").isNotNull()
        )
        .orderBy(F.col("order_date").desc(), "order_id", "line_no")
        .first()
    )
    assert sale is not None, f"no completed line by {REFUNDED_BY} to refund"
    discount = round(sale["discount"] / sale["quantity"], 2)
    header = "order_id,line_no,customer_id,item_id,quantity,unit_price,discount,currency,"
    header += "order_time,channel,store_id,status"
    rows = [
        f"LATE-0001,1,{sale['customer_id']},{sale['item_id']},2,10.0,0.0,EUR,"
        f"{LATE_DAY.isoformat()}T09:30:00.000+00:00,store,ST001,completed",
        f"{sale['order_id']},{sale['line_no']},{sale['customer_id']},{sale['item_id']},1,"
        f"{sale['original_unit_price']},{discount},{sale['original_currency'] or ''},"
        f"{DAY.isoformat()}T15:00:00.000+00:00,{sale['channel'] or ''},"
        f"{sale['store_id'] or ''},refunded",
    ]
    folder = Path(tables.landing(config, "transactions")) / "corrections=20260630"
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_text("\n".join([header, *rows]) + "\n")
    return str(sale["order_id"]), int(sale["line_no"]), sale["order_date"]


def _features(spark: SparkSession, config: Config, as_of: date) -> DataFrame:
    path = tables.table_path(config, Layer.GOLD, "user_features")
    return tables.read(spark, path).where(F.col("as_of_date") == F.lit(as_of))


@pytest.fixture(scope="module")
def played(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> NextDay:
    root: Path = tmp_path_factory.mktemp("next_day")
    config = make_config(root)
    run_stage(spark, config, "generate", RUN_DATE)
    for stage in (*FIRST_STAGES, "features"):
        run_stage(spark, config, stage, RUN_DATE)
    lines_path = tables.table_path(config, Layer.SILVER, "order_lines")
    before_version = tables.version(spark, lines_path)
    assert daily.last_build(spark, daily.path(config)) is not None

    run_stage(spark, config, "generate", NEXT, next_day=True)
    refunded = _land_corrections(spark, config)
    for stage in (*FIRST_STAGES, "features"):
        run_stage(spark, config, stage, NEXT)
    built = daily.last_build(spark, daily.path(config))
    assert built is not None
    # Kept apart: the full rebuild below replaces the same snapshot.
    kept = str(root / "incremental_user_features")
    tables.append(_features(spark, config, NEXT), kept)
    row = tables.read(spark, tables.ground_truth(config, next_day.TRUTH_TABLE)).first()
    assert row is not None
    return NextDay(
        config,
        tables.read(spark, kept),
        built,
        tables.read(spark, lines_path, before_version),
        row.asDict(),
        refunded,
    )


def test_the_next_day_holds_late_and_corrected_rows(spark: SparkSession, played: NextDay) -> None:
    assert played.truth["day"] == DAY
    assert played.truth["events"] > 0
    lines = tables.read(spark, tables.table_path(played.config, Layer.SILVER, "order_lines"))
    late = lines.where(F.col("order_id") == "LATE-0001").select("order_date").collect()
    assert [r[0] for r in late] == [LATE_DAY]
    order_id, line_no, refunded_day = played.refunded
    refunded = lines.where((F.col("order_id") == order_id) & (F.col("line_no") == line_no))
    row = refunded.select("order_date", "refunded_quantity", F.to_date("refunded_at")).first()
    assert row is not None
    assert tuple(row) == (refunded_day, 1, DAY)


def test_incremental_features_equal_a_full_rebuild(spark: SparkSession, played: NextDay) -> None:
    full_config = make_config(
        Path(played.config.storage.warehouse).parent, "features.incremental=false"
    )
    run_stage(spark, full_config, "features", NEXT)
    full = _features(spark, full_config, NEXT)
    incremental = played.incremental
    assert incremental.columns == full.columns
    assert incremental.count() == full.count()
    assert incremental.exceptAll(full).count() == 0
    assert full.exceptAll(incremental).count() == 0


def _comparable(days: DataFrame) -> DataFrame:
    """Maps cannot be compared by exceptAll: category spend as sorted (category, spend) pairs."""
    return days.withColumn("category_spend", F.array_sort(F.map_entries("category_spend")))


def test_the_merged_table_equals_one_built_from_scratch(
    spark: SparkSession, played: NextDay
) -> None:
    config = played.config
    merged = _comparable(tables.read(spark, daily.path(config)))

    def silver(name: str) -> DataFrame:
        return tables.read(spark, tables.table_path(config, Layer.SILVER, name))

    rebuilt = _comparable(transforms.customer_daily(silver("order_lines"), silver("items"), NEXT))
    assert merged.exceptAll(rebuilt).count() == 0
    assert rebuilt.exceptAll(merged).count() == 0


def test_the_merge_recomputed_only_the_changed_days(spark: SparkSession, played: NextDay) -> None:
    """The days merged are the landed day, the day before (late rows) and the days of the
    orders the refunds corrected: found here by diffing silver's two versions, not from the
    change feed, plus lines placed or refunded on DAY that silver already held."""
    config = played.config
    now = tables.read(spark, tables.table_path(config, Layer.SILVER, "order_lines"))

    def on_day(column: str) -> Column:
        return F.to_date(column) == F.lit(DAY)

    changed = (
        now.exceptAll(played.lines_before)
        .select("order_id")
        .unionByName(
            played.lines_before.where(on_day("order_ts") | on_day("refunded_at")).select("order_id")
        )
    )
    expected = {
        row[0]
        for row in now.join(changed, "order_id", "left_semi")
        .where(F.col("order_date") < F.lit(NEXT))
        .select("order_date")
        .distinct()
        .collect()
    }
    assert played.built.mode == "merge"
    assert set(played.built.days) == expected
    assert {LATE_DAY, played.refunded[2]} <= expected
    assert len(expected) < 10  # of the 60-day history

"""Scale check of the recommend job: synthetic silver tables of N customers and M items, then
the real `recommend` job through spark-submit.sh with tuning off, timed step by step.

    .venv/bin/python bench/recommend_scale.py --base /tmp/rscale/n1000000 \
        --customers 1000000 --items 50000 --run-date 2026-06-30 [--set recommend.max_iter=5]

The synthetic world is deliberately simple (each customer prefers one of 200 item clusters,
with a popularity skew on top): it measures cost, not quality (recommend_quality.py does that).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config, load_config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.spark import build_session

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = 200


def synthetic_silver(
    spark: SparkSession, customers: int, items: int, events_per_customer: int, as_of: date
) -> dict[str, DataFrame]:
    start = as_of - timedelta(days=60)
    cust = spark.range(customers).select(
        F.format_string("C%08d", F.col("id")).alias("customer_id"),
        (F.abs(F.hash(F.col("id"), F.lit(7))) % CLUSTERS).alias("cluster"),
        F.lit(date(2025, 1, 1)).alias("signup_date"),
        F.lit("silver").alias("loyalty_tier"),
    )
    per_cluster = items // CLUSTERS
    u = F.rand(11)
    own = F.col("cluster") * per_cluster + F.floor(F.rand(12) * per_cluster)
    popular = F.floor(F.pow(F.rand(13), F.lit(4.0)) * items)
    item_no = F.when(u < 0.7, own).otherwise(popular).cast("long")
    day = F.date_add(F.lit(start), F.floor(F.rand(14) * 60).cast("int"))
    events = (
        cust.select(
            "customer_id",
            "cluster",
            F.explode(F.sequence(F.lit(1), F.lit(events_per_customer))).alias("n"),
        )
        .select(
            F.concat_ws("-", "customer_id", "n").alias("event_id"),
            "customer_id",
            F.when(F.rand(15) < 0.85, "product_view").otherwise("add_to_cart").alias("event_type"),
            F.format_string("I%06d", item_no).alias("item_id"),
            day.alias("event_date"),
        )
        .withColumn("event_ts", F.to_timestamp(F.col("event_date")) + F.expr("INTERVAL 12 HOURS"))
    )
    lines = (
        events.where(F.col("event_type") == "add_to_cart")
        .where(F.rand(16) < 0.3)
        .select(
            F.col("event_id").alias("order_id"),
            F.lit(1).alias("line_no"),
            "customer_id",
            "item_id",
            F.lit(1).alias("quantity"),
            F.lit(0).alias("refunded_quantity"),
            F.lit(1).alias("net_quantity"),
            F.lit(10.0).alias("unit_price"),
            F.col("event_ts").alias("order_ts"),
            F.col("event_date").alias("order_date"),
            F.lit("completed").alias("status"),
        )
    )
    catalog = spark.range(items).select(
        F.format_string("I%06d", F.col("id")).alias("item_id"),
        F.format_string("Item %d", F.col("id")).alias("title"),
        (F.col("id") % 8).cast("string").alias("category"),
        (F.col("id") % 5).cast("string").alias("brand"),
        (F.col("id") % 97 + 1).cast("double").alias("price"),
        (F.col("id") % 50 != 0).alias("active"),
        F.lit(None).cast("timestamp").alias("updated_at"),
    )
    return {
        "customers": cust.drop("cluster"),
        "events": events,
        "order_lines": lines,
        "items": catalog,
    }


def write(spark: SparkSession, config: Config, frames: dict[str, DataFrame]) -> None:
    for name, df in frames.items():
        path = tables.table_path(config, Layer.SILVER, name)
        writer = df.write.format("delta").mode("overwrite")
        if name == "events":
            writer = writer.partitionBy("event_date")
        writer.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--events-per-customer", type=int, default=20)
    parser.add_argument("--run-date", default="2026-06-30")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    sets = [
        f"storage.landing={args.base}/landing",
        f"storage.warehouse={args.base}/warehouse",
        f"storage.ground_truth={args.base}/ground_truth",
    ]
    as_of = date.fromisoformat(args.run_date)
    if not args.skip_data:
        config = load_config("local", sets)
        spark = build_session(config, "bench-recommend-scale-data")
        started = time.perf_counter()
        write(spark, config, synthetic_silver(spark, args.customers, args.items,
                                              args.events_per_customer, as_of))  # fmt: skip
        print(f"synthetic silver: {time.perf_counter() - started:.0f}s", flush=True)
        spark.stop()
    job = [str(ROOT / "spark-submit.sh"), "recommend", "--run-date", args.run_date]
    for s in [*sets, "recommend.tune=false", *args.overrides]:
        job += ["--set", s]
    started = time.perf_counter()
    subprocess.run(job, check=True, cwd=ROOT)
    print(f"recommend job: {time.perf_counter() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

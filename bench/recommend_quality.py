"""Recommendation quality against ground truth: ALS vs popularity, on the time split and against
the generator's planted preferences. bench/README-recommend.md explains the numbers.

    .venv/bin/python bench/recommend_quality.py --base /tmp/rbench/n10000 --run-date 2026-06-30 \
        [--customers 10000 --generate] [--set recommend.grid.rank=[16,32] ...]

With --generate it first runs `generate` and `pipeline` (ingest, validate, silver) into <base>;
then it runs `recommend` there through spark-submit.sh (timed), and scores the results in a local
Spark session. Results go to stdout and to <base>/recommend_quality.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config, load_config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.recommend import baselines, evaluate, serve
from precision_marketing.recommend.interactions import excluded_pairs, interactions
from precision_marketing.recommend.job import (
    CUSTOMER_IDS,
    ITEM_IDS,
    interaction_params,
    model_version,
    to_idx,
)
from precision_marketing.spark import build_session

ROOT = Path(__file__).resolve().parents[1]

K = 10
# A category's window counts as a planted preference when its mix weight is at least this.
MIN_CATEGORY_WEIGHT = 0.1


def storage_sets(base: str) -> list[str]:
    return [
        f"storage.landing={base}/landing",
        f"storage.warehouse={base}/warehouse",
        f"storage.ground_truth={base}/ground_truth",
    ]


def submit(job: str, run_date: str, sets: list[str], *extra: str) -> float:
    args = [str(ROOT / "spark-submit.sh"), job, "--run-date", run_date, *extra]
    for s in sets:
        args += ["--set", s]
    started = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT)
    return time.perf_counter() - started


def planted_relevance(truth: DataFrame) -> DataFrame:
    """(customer_id, relevant item ids) from ground_truth/item_preferences: the items of each
    favoured category's window (item index = category + 8 * j, j in the window mod its size)."""
    categories = ("electronics", "home", "fashion", "beauty", "sports", "books", "toys", "grocery")
    cat_no = F.array_position(F.array(*(F.lit(c) for c in categories)), F.col("category")) - 1
    window = F.sequence(F.lit(0), F.col("item_window") - 1)
    return (
        truth.where(F.col("weight") >= MIN_CATEGORY_WEIGHT)
        .select(
            "customer_id",
            cat_no.alias("cat"),
            "category_items",
            F.explode(F.transform(window, lambda w: F.col("item_offset") + w)).alias("j"),
        )
        .select(
            "customer_id",
            F.format_string(
                "I%06d", (F.col("cat") + (F.col("j") % F.col("category_items")) * 8 + 1).cast("int")
            ).alias("item_id"),
        )
    )


def planted_metrics(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any]:
    """precision@10 and NDCG@10 of the served model lists (blend, or ALS) and of popularity,
    for the customers the model serves, against the planted preference windows."""
    gold = tables.table_path(config, Layer.GOLD, "recommendations")
    recs = tables.read(spark, gold).where(F.col("as_of_date") == F.lit(as_of))
    item_ids = tables.read(spark, tables.table_path(config, Layer.GOLD, ITEM_IDS))
    customer_ids = tables.read(spark, tables.table_path(config, Layer.GOLD, CUSTOMER_IDS))
    # The model's lists as served: the blend when it is tuned, else ALS (fallbacks left out).
    served = recs.where(F.col("source").isin("blend", "als")).join(item_ids, "item_id")
    served_customers = served.select("customer_id").distinct().join(customer_ids, "customer_id")

    relevant = (
        planted_relevance(tables.read(spark, tables.ground_truth(config, "item_preferences")))
        .join(item_ids, "item_id")
        .join(customer_ids, "customer_id")
        .groupBy("customer_idx")
        .agg(F.collect_set(F.col("item_idx").cast("double")).alias("relevant"))
        .join(served_customers.select("customer_idx"), "customer_idx", "left_semi")
    )
    als_lists = evaluate.ranked_lists(served.join(customer_ids, "customer_id"))

    # Popularity as served: most customers over the same interactions, the served exclusions.
    silver = {
        n: tables.read(spark, tables.table_path(config, Layer.SILVER, n))
        for n in ("events", "order_lines", "items")
    }
    cfg = config.recommend
    inter = to_idx(
        interactions(silver["events"], silver["order_lines"], interaction_params(config), as_of),
        customer_ids,
        item_ids,
    )
    active = silver["items"].where("active").join(item_ids, "item_id").select("item_idx")
    popular = baselines.popular(inter, active, K + cfg.candidate_buffer)
    bought = (
        excluded_pairs(silver["events"], silver["order_lines"], cfg.exclude, as_of)
        .join(item_ids, "item_id")
        .groupBy("customer_id")
        .agg(F.collect_set("item_idx").alias("excluded"))
    )
    frame = (
        served_customers.join(bought, "customer_id", "left")
        .crossJoin(popular.select(F.col("items").alias(serve.POPULAR)))
        .drop("customer_id")
    )
    pop_ranked = serve.top_n(serve.with_candidate_columns(frame), ["customer_idx"], K)
    out: dict[str, Any] = {"customers": served_customers.count()}
    for name, lists in (("served", als_lists), ("popular", evaluate.ranked_lists(pop_ranked))):
        for m in evaluate.ranking_metrics(name, lists, relevant, [K]):
            if m.metric in ("precisionAtK", "ndcgAtK"):
                out[f"{name}.{m.metric}@{K}"] = m.value
    return out


def time_split_metrics(spark: SparkSession, config: Config, as_of: date) -> dict[str, float]:
    metrics = tables.read(spark, tables.table_path(config, Layer.OPS, "recommend_metrics"))
    rows = (
        metrics.where(
            (F.col("as_of_date") == F.lit(as_of))
            & F.col("chosen")
            & (F.col("k") == K)
            & F.col("metric").isin("precisionAtK", "ndcgAtK", "recallAtK", "catalogCoverageAtK")
        )
        .select("model", "metric", "value")
        .collect()  # bounded: a few models x four metrics
    )
    return {f"{r['model']}.{r['metric']}@{K}": r["value"] for r in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--run-date", required=True)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    sets = storage_sets(args.base)
    timings: dict[str, float] = {}
    if args.generate:
        timings["generate_s"] = submit(
            "generate", args.run_date, sets, "--customers", str(args.customers)
        )
        timings["pipeline_s"] = submit("pipeline", args.run_date, sets)
    rec_sets = [*sets, f"recommend.eval_k=[5,{K},20]", *args.overrides]
    timings["recommend_s"] = submit("recommend", args.run_date, rec_sets)

    config = load_config("local", rec_sets)
    as_of = date.fromisoformat(args.run_date)
    spark = build_session(config, "bench-recommend-quality")
    try:
        result = {
            "base": args.base,
            "run_date": args.run_date,
            "model_version": model_version(config.recommend, as_of),
            "timings": timings,
            "time_split": time_split_metrics(spark, config, as_of),
            "planted": planted_metrics(spark, config, as_of),
        }
    finally:
        spark.stop()
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    Path(args.base, "recommend_quality.json").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from precision_marketing.config import Config, load_config
from precision_marketing.generate import truth
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.recommend import baselines, evaluate, serve
from precision_marketing.recommend.interactions import Exclude, excluded_pairs, interactions
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


def relevant_sets(pairs: DataFrame) -> DataFrame:
    """(customer_idx, item_idx) -> (customer_idx, relevant array<double>), as ranking_metrics
    takes them."""
    return pairs.groupBy("customer_idx").agg(
        F.collect_set(F.col("item_idx").cast("double")).alias("relevant")
    )


def recently_viewed(inter: DataFrame, excluded: DataFrame) -> DataFrame:
    """(customer_idx, rank, item_idx): each customer's K most recently touched items that are
    not excluded (bought ones, as served), newest first: what repeating views alone earns."""
    newest_first = Window.partitionBy("customer_idx").orderBy(F.desc("last_ts"), "item_idx")
    return (
        inter.join(excluded, ["customer_idx", "item_idx"], "left_anti")
        .withColumn("rank", F.row_number().over(newest_first))
        .where(F.col("rank") <= K)
        .select("customer_idx", "rank", "item_idx")
    )


def scores(lists: dict[str, DataFrame], relevant: DataFrame) -> dict[str, float]:
    out = {}
    for name, ranked in lists.items():
        for m in evaluate.ranking_metrics(name, evaluate.ranked_lists(ranked), relevant, [K]):
            if m.metric in ("precisionAtK", "ndcgAtK"):
                out[f"{name}.{m.metric}@{K}"] = m.value
    return out


def planted_metrics(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any]:
    """precision@10 and NDCG@10 against the planted preference windows, for the customers the
    model serves (blend, or ALS; fallbacks left out), scored two ways.

    First the lists as served, which exclude bought items but not viewed ones. Views are drawn
    from the same windows, so repeating them scores: the `recently_viewed` baseline says how
    much. Then `unseen`: every item the customer saw before the run date (any product
    event or order line) removed from the lists and from the relevant sets alike, so only
    finding window items the customer has not met yet scores; customers left without a relevant
    item are not judged.
    """
    gold = tables.table_path(config, Layer.GOLD, "recommendations")
    recs = tables.read(spark, gold).where(F.col("as_of_date") == F.lit(as_of))
    item_ids = tables.read(spark, tables.table_path(config, Layer.GOLD, ITEM_IDS))
    customer_ids = tables.read(spark, tables.table_path(config, Layer.GOLD, CUSTOMER_IDS))
    served = to_idx(
        recs.where(F.col("source").isin(serve.BLEND, serve.ALS)), customer_ids, item_ids
    )
    served_customers = served.select("customer_idx").distinct()

    preferences = tables.read(spark, tables.ground_truth(config, "item_preferences"))
    relevant = to_idx(
        truth.preferred_items(preferences, MIN_CATEGORY_WEIGHT), customer_ids, item_ids
    ).join(served_customers, "customer_idx", "left_semi")

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

    def pairs(exclude: Exclude) -> DataFrame:
        found = excluded_pairs(silver["events"], silver["order_lines"], exclude, as_of)
        return to_idx(found, customer_ids, item_ids).select("customer_idx", "item_idx")

    def popular_without(excluded: DataFrame) -> DataFrame:
        """Popularity as served to the same customers: most customers, `excluded` left out."""
        frame = served_customers.join(
            excluded.groupBy("customer_idx").agg(
                F.collect_set(F.col("item_idx").cast("int")).alias("excluded")
            ),
            "customer_idx",
            "left",
        ).crossJoin(popular.select(F.col("items").alias(serve.POPULAR)))
        return serve.top_n(serve.with_candidate_columns(frame), ["customer_idx"], K)

    excluded, seen = pairs(cfg.exclude), pairs("seen").cache()
    relevant_unseen = relevant_sets(relevant.join(seen, ["customer_idx", "item_idx"], "left_anti"))
    result = {
        "customers": served_customers.count(),
        **scores(
            {
                "served": served,
                "popular": popular_without(excluded),
                "recently_viewed": recently_viewed(inter, excluded),
            },
            relevant_sets(relevant),
        ),
        "unseen": {
            "customers": relevant_unseen.count(),
            **scores(
                {
                    "served": served.join(seen, ["customer_idx", "item_idx"], "left_anti"),
                    "popular": popular_without(seen),
                },
                relevant_unseen,
            ),
        },
    }
    seen.unpersist()
    return result


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

"""Recommend-for-all cost: MLlib's recommendForUserSubset against the blocked numpy top-k
(recommend/topk.py) on the same random factors, same k, one session, timed end to end
(both written to a noop sink, so the whole product is computed).

    .venv/bin/python bench/topk_scale.py --users 200000 --items 10000 --rank 32 --k 15
    .venv/bin/python bench/topk_scale.py --users 1000000 --items 50000 --rank 64 --k 210 \
        --blocked-only   # issue 16's scale: N 10 + candidate_buffer 200, without MLlib's 27 min
"""

from __future__ import annotations

import argparse
import tempfile
import time

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import load_config
from precision_marketing.recommend import als, topk
from precision_marketing.spark import build_session


def random_factors(spark: SparkSession, n: int, rank: int, seed: int) -> DataFrame:
    return spark.range(n).select(
        F.col("id").cast("int").alias("id"),
        F.array(*(F.randn(seed + j).cast("float") for j in range(rank))).alias("features"),
    )


def timed(label: str, frame: DataFrame) -> float:
    started = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--k", type=int, default=15)
    parser.add_argument("--blocked-only", action="store_true", help="skip MLlib's top-k")
    args = parser.parse_args()
    spark = build_session(load_config("local"), "bench-topk")
    users = random_factors(spark, args.users, args.rank, 100).cache()
    items = random_factors(spark, args.items, args.rank, 500).cache()
    print(f"users {users.count():,} x items {items.count():,}, rank {args.rank}, k {args.k}")
    blocked = timed("blocked numpy top-k", topk.recommend_for_users(users, items, args.k))
    if not args.blocked_only:
        with tempfile.TemporaryDirectory() as tmp:
            # A saved ALSModel whose factor tables are swapped for the random ones.
            seed_model = ALS(rank=args.rank, maxIter=1, implicitPrefs=True, seed=1).fit(
                spark.createDataFrame(
                    [(0, 0, 1.0), (1, 1, 1.0)], "user int, item int, rating float"
                )
            )
            seed_model.save(f"{tmp}/seed")
            model: ALSModel = als.factor_model(spark, f"{tmp}/seed", users, items, f"{tmp}/random")
            subset = users.select(F.col("id").alias("user"))
            mllib = timed(
                "MLlib recommendForUserSubset", model.recommendForUserSubset(subset, args.k)
            )
        print(f"ratio: {mllib / blocked:.1f}x")
    spark.stop()


if __name__ == "__main__":
    main()

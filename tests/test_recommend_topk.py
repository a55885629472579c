"""Blocked top-k from ALS factors equals MLlib's recommendForUserSubset lists."""

from __future__ import annotations

import numpy as np
from pyspark.ml.recommendation import ALS
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.recommend import topk


def test_best_k_orders_by_score_then_index() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, -1.0], [3.0, 2.0, 1.0, 0.0, 5.0]], dtype=np.float32)
    assert topk.best_k(scores, 3).tolist() == [[1, 3, 2], [4, 0, 1]]
    # k above the item count returns every item, ranked.
    assert topk.best_k(scores[:1], 9).tolist() == [[1, 3, 2, 0, 4]]


def test_best_k_equals_a_full_sort_with_many_ties() -> None:
    # 1,000 columns in 32 chunks; scores drawn from four values, so the k-th place is a tie.
    scores = np.random.default_rng(5).integers(0, 4, (40, 1000)).astype(np.float32)
    expected = [sorted(range(1000), key=lambda j: (-row[j], j))[:20] for row in scores]
    assert topk.best_k(scores, 20).tolist() == expected
    assert topk.rows_per_block(92_331) == 90
    assert topk.rows_per_block(3) == 2048


def test_ranked_float64_positive_only_cuts_short_rows() -> None:
    # float64 ranks by lexsort; a sparse product's zeros are no score at all.
    scores = np.array(
        [[0.0, 2.5, 0.0, 2.5, 1e-300], [0.0, 0.0, 0.0, 0.0, 0.0], [1 / 3, 1 / 3 + 1e-16, 0, 0, 7]]
    )
    counts, columns = topk.ranked(scores, 3, positive=True)
    assert counts.tolist() == [3, 0, 3]
    assert columns.tolist() == [1, 3, 4, 4, 1, 0]
    counts, columns = topk.ranked(scores, 2)
    assert counts.tolist() == [2, 2, 2]
    assert columns.tolist() == [1, 3, 0, 1, 4, 1]


def test_blocked_top_k_equals_mllib_recommend_for_user_subset(spark: SparkSession) -> None:
    rng = np.random.default_rng(3)
    ratings = [
        (int(u), int(i), float(c))
        for u, i, c in zip(
            rng.integers(0, 60, 900), rng.integers(0, 40, 900), rng.integers(1, 5, 900), strict=True
        )
    ]
    frame = spark.createDataFrame(ratings, "customer_idx int, item_idx int, confidence double")
    als = ALS(
        userCol="customer_idx", itemCol="item_idx", ratingCol="confidence", implicitPrefs=True,
        rank=6, maxIter=5, regParam=0.1, alpha=2.0, seed=11,
    )  # fmt: skip
    model = als.fit(frame)
    subset = spark.range(0, 60, 3).select(F.col("id").cast("int").alias("customer_idx"))
    expected = {
        r.customer_idx: r.recommendations for r in model.recommendForUserSubset(subset, 7).collect()
    }
    users = model.userFactors.join(subset, F.col("id") == F.col("customer_idx"), "left_semi")
    got = {
        r.customer_idx: r.recommendations
        for r in topk.recommend_for_users(users, model.itemFactors, 7).collect()
    }
    assert sorted(got) == sorted(expected)
    assert len(got) == 20
    for user, recs in expected.items():
        assert [r.item_idx for r in got[user]] == [r.item_idx for r in recs], user
        assert np.allclose([r.rating for r in got[user]], [r.rating for r in recs], atol=1e-5)

"""Co-occurrence scores and the blend on tiny hand-written frames: exact values worked by hand."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.recommend import blend, cooccur
from tests.test_recommend import CANDS, assert_rows

# Four customers, four items; item 4 is inactive (never a candidate). With max_history=2,
# c2 keeps i3 (4.0) and i1 (1.0, the tie with i2 goes to the smaller id).
AFFINITY = [
    (1, 1, 2.0),
    (1, 2, 1.0),
    (2, 1, 1.0),
    (2, 2, 1.0),
    (2, 3, 4.0),
    (3, 2, 3.0),
    (3, 3, 1.0),
    (4, 4, 1.0),
    (4, 1, 0.5),
]


@pytest.fixture(scope="module")
def hist(spark: SparkSession) -> DataFrame:
    inter = spark.createDataFrame(AFFINITY, "customer_idx int, item_idx int, confidence double")
    return cooccur.history(inter, max_history=2)


def test_history_keeps_each_customers_strongest_items(hist: DataFrame) -> None:
    assert_rows(
        hist,
        [
            (1, 1, 2.0),
            (1, 2, 1.0),
            (2, 3, 4.0),
            (2, 1, 1.0),
            (3, 2, 3.0),
            (3, 3, 1.0),
            (4, 4, 1.0),
            (4, 1, 0.5),
        ],
    )


def test_jaccard_neighbours_exact(hist: DataFrame) -> None:
    # Customers per item: i1 {c1, c2, c4} = 3, i2 {c1, c3} = 2, i3 {c2, c3} = 2, i4 {c4} = 1.
    # Pairs share one customer each: J(1,2) = 1/(3+2-1), J(1,3) = 1/4, J(1,4) = 1/(3+1-1),
    # J(2,3) = 1/(2+2-1); an item is its own best neighbour (J = 1). Top 2 kept per item.
    sims = cooccur.item_similarity(hist, "jaccard", min_customers=1, neighbours=2)
    assert_rows(
        sims,
        [
            (1, 1, 1.0, 3),
            (1, 4, 1 / 3, 1),
            (2, 2, 1.0, 2),
            (2, 3, 1 / 3, 1),
            (3, 3, 1.0, 2),
            (3, 2, 1 / 3, 1),
            (4, 4, 1.0, 1),
            (4, 1, 1 / 3, 1),
        ],
    )


def test_lift_count_and_min_customers(hist: DataFrame) -> None:
    lift = cooccur.item_similarity(hist, "lift", min_customers=1, neighbours=10)
    got = {(r["item_idx"], r["similar_idx"]): r["similarity"] for r in lift.collect()}
    assert got[(1, 1)] == pytest.approx(3 / 9)
    assert got[(1, 4)] == pytest.approx(1 / 3)
    assert got[(2, 3)] == pytest.approx(1 / 4)
    assert len(got) == 12  # 4 self pairs + 4 shared pairs both ways
    # Two customers at least: no pair of distinct items qualifies, i4 (one customer) drops.
    strict = cooccur.item_similarity(hist, "count", min_customers=2, neighbours=10)
    assert_rows(strict, [(1, 1, 3.0, 3), (2, 2, 2.0, 2), (3, 3, 2.0, 2)])


def test_scores_and_lists_exact(spark: SparkSession, hist: DataFrame) -> None:
    sims = cooccur.item_similarity(hist, "jaccard", min_customers=1, neighbours=2)
    active = spark.createDataFrame([(1,), (2,), (3,)], "item_idx int")

    def lists(depth: int) -> dict[int, list[tuple[int, float]]]:
        return {
            r["customer_idx"]: [(c["item_idx"], round(c["score"], 12)) for c in r["cooccurrence"]]
            for r in cooccur.candidate_lists(hist, sims, active, depth).collect()
        }

    # c1: i1 (2.0) -> j1 2*1; i2 (1.0) -> j2 1*1, j3 1/3.  c2: i3 (4.0) -> j3 4, j2 4/3;
    # i1 (1.0) -> j1 1.  c3: i2 (3.0) -> j2 3, j3 1; i3 (1.0) -> j3 1, j2 1/3.
    # c4: i4 (1.0) -> j1 1/3 (j4 inactive); i1 (0.5) -> j1 0.5.
    third = round(1 / 3, 12)
    assert lists(10) == {
        1: [(1, 2.0), (2, 1.0), (3, third)],
        2: [(3, 4.0), (2, round(4 / 3, 12)), (1, 1.0)],
        3: [(2, round(10 / 3, 12)), (3, 2.0)],
        4: [(1, round(5 / 6, 12))],
    }
    assert lists(2) == {
        1: [(1, 2.0), (2, 1.0)],
        2: [(3, 4.0), (2, round(4 / 3, 12))],
        3: [(2, round(10 / 3, 12)), (3, 2.0)],
        4: [(1, round(5 / 6, 12))],
    }


def test_lists_leave_out_customers_without_a_score(spark: SparkSession, hist: DataFrame) -> None:
    # c4's items are i4 (inactive) and i1; with only i2 shown, i1's neighbours (i1, i4) score
    # nothing for c4, and i2 ties for c1 (1.0 x 1) and c3 (3.0 x 1 + 1.0 x 1/3).
    sims = cooccur.item_similarity(hist, "jaccard", min_customers=1, neighbours=2)
    only_i2 = spark.createDataFrame([(2,)], "item_idx int")
    got = {
        r["customer_idx"]: [(c["item_idx"], round(c["score"], 12)) for c in r["cooccurrence"]]
        for r in cooccur.candidate_lists(hist, sims, only_i2, 5).collect()
    }
    assert got == {1: [(2, 1.0)], 2: [(2, round(4 / 3, 12))], 3: [(2, round(10 / 3, 12))]}


def test_simplex_grid_corners_first() -> None:
    assert blend.simplex(0.5, dims=3) == [
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (0.5, 0.5, 0.0),
        (0.5, 0.0, 0.5),
        (0.0, 0.5, 0.5),
    ]
    assert len(blend.simplex(0.1)) == 286  # C(10 + 3, 3) points for four components


@pytest.fixture(scope="module")
def one_customer(spark: SparkSession) -> DataFrame:
    """Excluded item 5. ALS (pool 3 after exclusion): 1 (3.0), 2 (1.0), 3 (-1.0); range 4,
    floor 4/3 -> scaled (s + 7/3) / (16/3): 1.0, 0.625, 0.25. Co-occurrence 2 (4.0), 4 (2.0):
    floor 1 -> 1.0, 1/3. Popular 4, 1 after exclusion, by rank: 1.0, 0.5. No recent list."""
    frame = spark.createDataFrame(
        [
            (
                7,
                [5],
                [(1, 3.0), (5, 2.5), (2, 1.0), (3, -1.0)],
                [(2, 4.0), (4, 2.0)],
                [(5, 9.0), (4, 8.0), (1, 7.0)],
                None,
            )
        ],
        f"customer_idx int, excluded array<int>, als {CANDS}, cooccurrence {CANDS}, "
        f"popular {CANDS}, recent_popular {CANDS}",
    )
    return blend.with_features(frame, pool=3)


def ranked(frame: DataFrame, weights: blend.Weights) -> list[tuple[int, float]]:
    row = frame.select(blend.blended(F.col(blend.FEATURES), weights).alias("b")).first()
    assert row is not None
    return [(c["item_idx"], round(c["score"], 9)) for c in row["b"]]


def test_blend_scores_exact(one_customer: DataFrame) -> None:
    # 1: .5*1 + .25*.5 = .625; 2: .5*.625 + .25*1 = .5625; 4: .25/3 + .25*1; 3: .5*.25.
    assert ranked(one_customer, (0.5, 0.25, 0.25, 0.0)) == [
        (1, 0.625),
        (2, 0.5625),
        (4, round(1 / 3, 9)),
        (3, 0.125),
    ]
    # A corner is its component alone, in its own order; items it does not hold drop out.
    assert ranked(one_customer, (0.0, 1.0, 0.0, 0.0)) == [(2, 1.0), (4, round(1 / 3, 9))]
    assert [i for i, _ in ranked(one_customer, (1.0, 0.0, 0.0, 0.0))] == [1, 2, 3]
    assert ranked(one_customer, (0.0, 0.0, 0.0, 1.0)) == []


def test_grid_values_exact_and_choice(spark: SparkSession, one_customer: DataFrame) -> None:
    """Relevant: item 4 only. At k=1 NDCG is 1 exactly when 4 comes first."""
    frame = one_customer.withColumn(
        "_fallback", blend.fallback_ids(F.col("popular"), F.col("excluded"))
    )
    truth = spark.createDataFrame(
        [(7, [4.0]), (8, [1.0])], "customer_idx int, relevant array<double>"
    )
    grid = [(1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, 1.0, 0.0, 0.0), (0.5, 0.5, 0.0, 0.0)]
    # ALS: 1 first -> 0; popular: 4 first -> 1; co-occurrence: 2 first -> 0; half and half:
    # 1: .5, 2: .5*.625 + .5 = .8125 -> 2 first -> 0. Customer 8 is not in the frame: 0.
    values = blend.grid_values(frame, truth, grid, "ndcgAtK", k=1, chunk=3)
    assert values == [0.0, 0.5, 0.0, 0.0]
    assert blend.choose(grid, values) == (0.0, 0.0, 1.0, 0.0)
    assert blend.choose(grid, [0.2, 0.2, 0.2, 0.2]) == grid[0]  # a tie keeps the earlier point

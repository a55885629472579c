"""Co-occurrence scores and the blend on tiny hand-written frames: exact values worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.recommend import baselines, blend, cooccur
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


def test_ease_weights_are_each_items_ridge_regression_on_the_others(hist: DataFrame) -> None:
    # Pair counts of the four customers' kept items (c1 {1,2}, c2 {1,3}, c3 {2,3}, c4 {1,4}).
    gram = np.array(
        [[3, 1, 1, 1], [1, 2, 1, 0], [1, 1, 2, 0], [1, 0, 0, 1]],
        dtype=float,
    )
    l2 = 0.5

    def ridge(g: np.ndarray) -> dict[tuple[int, int], float]:
        """Column j regressed on the other columns: (G_-j,-j + l2 I) b = G_-j,j."""
        found: dict[tuple[int, int], float] = {}
        for j in range(len(g)):
            others = [i for i in range(len(g)) if i != j]
            b = np.linalg.solve(g[np.ix_(others, others)] + l2 * np.eye(len(others)), g[others, j])
            found |= {(i + 1, j + 1): w for i, w in zip(others, b, strict=True)}
        return found

    weights = cooccur.item_similarity(
        hist, "ease", min_customers=1, neighbours=3, ease=cooccur.EaseParams(l2, max_items=10)
    )
    got = {
        (r["item_idx"], r["similar_idx"]): (r["similarity"], r["customers"])
        for r in weights.collect()
    }
    want = ridge(gram)
    assert sorted(got) == sorted(want)  # every item pair, no item its own neighbour
    for pair, (w, customers) in got.items():
        assert w == pytest.approx(want[pair], abs=1e-9)
        assert customers == gram[pair[0] - 1, pair[1] - 1]
    # Item 4 is the least touched: with room for three items it gets no weights, and each item
    # keeps its largest weight by magnitude when one neighbour is allowed.
    busiest = cooccur.item_similarity(
        hist, "ease", min_customers=1, neighbours=1, ease=cooccur.EaseParams(l2, max_items=3)
    )
    want3 = ridge(gram[:3, :3])
    best = {i: max((p for p in want3 if p[0] == i), key=lambda p: abs(want3[p])) for i in (1, 2, 3)}
    assert {(r["item_idx"], r["similar_idx"]) for r in busiest.collect()} == set(best.values())
    assert [
        r["affinity"]
        for r in cooccur.history(
            hist.withColumnRenamed("affinity", "confidence"), 2, binary=True
        ).collect()
    ] == [1.0] * 8


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


def test_own_history_lists_each_customers_shown_items_strongest_first(
    spark: SparkSession,
) -> None:
    inter = spark.createDataFrame(AFFINITY, "customer_idx int, item_idx int, confidence double")
    active = spark.createDataFrame([(1,), (2,), (3,)], "item_idx int")
    got = {
        r["customer_idx"]: [(c["item_idx"], c["score"]) for c in r["own_history"]]
        for r in baselines.own_history(inter, active).collect()
    }
    # c2's tie (i1, i2 at 1.0) goes to the smaller id; c4 keeps i1 alone (i4 is not shown).
    assert got == {
        1: [(1, 2.0), (2, 1.0)],
        2: [(3, 4.0), (1, 1.0), (2, 1.0)],
        3: [(2, 3.0), (3, 1.0)],
        4: [(1, 0.5)],
    }


def test_simplex_grid_corners_first() -> None:
    assert blend.simplex(0.5, dims=3) == [
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (0.5, 0.5, 0.0),
        (0.5, 0.0, 0.5),
        (0.0, 0.5, 0.5),
    ]
    assert len(blend.simplex(0.1)) == 1001  # C(10 + 4, 4) points for five components


@pytest.fixture(scope="module")
def one_customer(spark: SparkSession) -> DataFrame:
    """Excluded item 5. ALS (pool 3 after exclusion): 1 (3.0), 2 (1.0), 3 (-1.0); range 4,
    floor 4/3 -> scaled (s + 7/3) / (16/3): 1.0, 0.625, 0.25. Co-occurrence 2 (4.0), 4 (2.0):
    floor 1 -> 1.0, 1/3. Popular 4, 1 after exclusion, by rank: 1.0, 0.5. No recent list. Own
    history 3 alone after exclusion: 1.0."""
    frame = spark.createDataFrame(
        [
            (
                7,
                [5],
                [(1, 3.0), (5, 2.5), (2, 1.0), (3, -1.0)],
                [(2, 4.0), (4, 2.0)],
                [(5, 9.0), (4, 8.0), (1, 7.0)],
                None,
                [(5, 6.0), (3, 2.0)],
            )
        ],
        f"customer_idx int, excluded array<int>, als {CANDS}, cooccurrence {CANDS}, "
        f"popular {CANDS}, recent_popular {CANDS}, own_history {CANDS}",
    )
    return blend.with_features(frame, pool=3)


def ranked(frame: DataFrame, weights: blend.Weights) -> list[tuple[int, float]]:
    row = frame.select(blend.blended(F.col(blend.FEATURES), weights).alias("b")).first()
    assert row is not None
    return [(c["item_idx"], round(c["score"], 9)) for c in row["b"]]


def test_blend_scores_exact(one_customer: DataFrame) -> None:
    # 1: .5*1 + .25*.5 = .625; 2: .5*.625 + .25*1 = .5625; 4: .25/3 + .25*1; 3: .5*.25.
    assert ranked(one_customer, (0.5, 0.25, 0.25, 0.0, 0.0)) == [
        (1, 0.625),
        (2, 0.5625),
        (4, round(1 / 3, 9)),
        (3, 0.125),
    ]
    # A corner is its component alone, in its own order; items it does not hold drop out.
    assert ranked(one_customer, (0.0, 1.0, 0.0, 0.0, 0.0)) == [(2, 1.0), (4, round(1 / 3, 9))]
    assert [i for i, _ in ranked(one_customer, (1.0, 0.0, 0.0, 0.0, 0.0))] == [1, 2, 3]
    assert ranked(one_customer, (0.0, 0.0, 0.0, 1.0, 0.0)) == []
    # Own history after the excluded item 5: item 3 alone; with ALS, 3 climbs from last:
    # 1: .5*1, 3: .5*.25 + .5*1 = .625, 2: .5*.625.
    assert ranked(one_customer, (0.0, 0.0, 0.0, 0.0, 1.0)) == [(3, 1.0)]
    assert ranked(one_customer, (0.5, 0.0, 0.0, 0.0, 0.5)) == [(3, 0.625), (1, 0.5), (2, 0.3125)]


def test_grid_values_exact_and_choice(spark: SparkSession, one_customer: DataFrame) -> None:
    """Relevant: item 4 only. At k=1 NDCG is 1 exactly when 4 comes first."""
    frame = one_customer.withColumn(
        "_fallback", blend.fallback_ids(F.col("popular"), F.col("excluded"))
    )
    truth = spark.createDataFrame(
        [(7, [4.0]), (8, [1.0])], "customer_idx int, relevant array<double>"
    )
    grid = [
        (1.0, 0.0, 0.0, 0.0, 0.0),
        (0.0, 0.0, 1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0, 0.0, 0.0),
        (0.5, 0.5, 0.0, 0.0, 0.0),
    ]
    # ALS: 1 first -> 0; popular: 4 first -> 1; co-occurrence: 2 first -> 0; half and half:
    # 1: .5, 2: .5*.625 + .5 = .8125 -> 2 first -> 0. Customer 8 is not in the frame: 0.
    values = blend.grid_values(frame, truth, grid, "ndcgAtK", k=1, chunk=3)
    assert values == [0.0, 0.5, 0.0, 0.0]
    assert blend.choose(grid, values) == (0.0, 0.0, 1.0, 0.0, 0.0)
    assert blend.choose(grid, [0.2, 0.2, 0.2, 0.2]) == grid[0]  # a tie keeps the earlier point


def test_grid_sample_is_a_fixed_subset_of_the_judged(spark: SparkSession) -> None:
    truth = spark.createDataFrame(
        [(c, [1.0]) for c in range(1, 41)], "customer_idx int, relevant array<double>"
    )
    assert blend.grid_sample(truth, 40, 40) is truth
    picked = [r["customer_idx"] for r in blend.grid_sample(truth, 40, 7).collect()]
    hashes = {
        r["customer_idx"]: r["h"]
        for r in truth.select("customer_idx", F.xxhash64("customer_idx").alias("h")).collect()
    }
    assert picked == sorted(hashes, key=lambda c: (hashes[c], c))[:7]
    assert [r["customer_idx"] for r in blend.grid_sample(truth, 40, 7).collect()] == picked

"""The uplift maths (measure/stats.py) against cases worked out by hand.

Expected values are written out from the textbook formulas, with the arithmetic shown, and
checked against kept implementations: statsmodels for the two proportions, scipy's
`ttest_ind_from_stats` for Welch's t-test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from precision_marketing.measure import stats


def evaluate(spark: SparkSession, row: dict[str, Any], **columns: Column) -> dict[str, Any]:
    """Evaluates Column expressions over one row of literal inputs."""
    frame = spark.createDataFrame([tuple(row.values())], list(row))
    result = frame.select(*(c.alias(name) for name, c in columns.items())).first()
    assert result is not None
    return result.asDict()


def test_hand_computed_two_proportion_case(spark: SparkSession) -> None:
    # 1000 treated with 120 conversions vs 1000 controls with 100.
    # p_t = 0.12, p_c = 0.10, difference 0.02.
    # Test: pooled p = 220 / 2000 = 0.11; se0 = sqrt(0.11 x 0.89 x (1/1000 + 1/1000))
    #       = sqrt(0.0001958) = 0.0139928553; z = 0.02 / se0 = 1.4293008.
    #       Two-sided p = 2 (1 - Phi(1.4293)) = 0.15292 (normal table: Phi(1.43) = 0.9236).
    # Interval (Agresti-Caffo: one conversion and one non-conversion added to each group):
    #       p~_t = 121 / 1002 = 0.1207585, p~_c = 101 / 1002 = 0.1007984, centre 0.0199601;
    #       se = sqrt(p~_t (1 - p~_t) / 1002 + p~_c (1 - p~_c) / 1002) = 0.0140150;
    #       0.0199601 -+ 1.959964 x se = [-0.0075089, 0.0474290].
    # Relative: 0.12 / 0.10 - 1 = 0.2; se(log RR) = sqrt(1/120 - 1/1000 + 1/100 - 1/1000)
    #       = sqrt(0.0163333) = 0.1278019; exp(ln 1.2 -+ 1.959964 x 0.1278019) - 1
    #       = exp(0.1823216 -+ 0.2504872) - 1 = [-0.0658942, 0.5415813].
    counts = {"n_t": 1000, "x_t": 120, "n_c": 1000, "x_c": 100}
    c = F.col
    diff = stats.rate_difference(c("n_t"), c("x_t"), c("n_c"), c("x_c"))
    rel = stats.relative_uplift(c("n_t"), c("x_t"), c("n_c"), c("x_c"))
    got = evaluate(
        spark,
        counts,
        uplift=diff.interval.estimate,
        low=diff.interval.low,
        high=diff.interval.high,
        z=diff.statistic,
        p=diff.p_value,
        rel=rel.estimate,
        rel_low=rel.low,
        rel_high=rel.high,
    )
    assert got["uplift"] == pytest.approx(0.02, abs=1e-12)
    assert got["z"] == pytest.approx(1.4293008, abs=1e-6)
    assert got["p"] == pytest.approx(0.15292, abs=5e-5)
    assert got["low"] == pytest.approx(-0.0075089, abs=1e-7)
    assert got["high"] == pytest.approx(0.0474290, abs=1e-7)
    assert got["rel"] == pytest.approx(0.2, abs=1e-12)
    assert got["rel_low"] == pytest.approx(-0.0658942, abs=1e-6)
    assert got["rel_high"] == pytest.approx(0.5415813, abs=1e-6)


def test_a_control_group_without_conversions_still_gets_a_wide_interval(
    spark: SparkSession,
) -> None:
    # 3 of 10 treated converted, 0 of 7 controls: the Wald interval would treat the control
    # rate 0 as exact (se 0 on that side). Agresti-Caffo: p~_t = 4 / 12, p~_c = 1 / 9;
    # se = sqrt((1/3)(2/3) / 12 + (1/9)(8/9) / 9) = 0.1717337; centre 0.2222222;
    # 0.2222222 -+ 1.959964 x se = [-0.1143696, 0.5588140].
    c = F.col
    diff = stats.rate_difference(c("n_t"), c("x_t"), c("n_c"), c("x_c"))
    got = evaluate(
        spark,
        {"n_t": 10, "x_t": 3, "n_c": 7, "x_c": 0},
        uplift=diff.interval.estimate,
        low=diff.interval.low,
        high=diff.interval.high,
    )
    assert got["uplift"] == pytest.approx(0.3, abs=1e-12)
    assert got["low"] == pytest.approx(-0.1143696, abs=1e-7)
    assert got["high"] == pytest.approx(0.5588140, abs=1e-7)


def test_hand_computed_revenue_difference(spark: SparkSession) -> None:
    # Treated revenues 10, 20, 30: n 3, sum 60, sum of squares 1400, mean 20,
    #   variance (1400 - 60^2/3) / 2 = 100. Controls 0, 10: n 2, sum 10, squares 100, mean 5,
    #   variance (100 - 10^2/2) / 1 = 50.
    # Difference 15; Welch se = sqrt(100/3 + 50/2) = sqrt(58.3333) = 7.6376262;
    # t = 15 / 7.6376262 = 1.9639610; Welch-Satterthwaite df = 58.3333^2 /
    #   ((100/3)^2 / 2 + 25^2 / 1) = 3402.7778 / 1180.5556 = 2.8823529;
    # p = 2 P(T_df > 1.963961) = 0.1480279 (the normal approximation said 0.0495);
    # interval 15 -+ t_0.975,df x se = 15 -+ 3.2572081 x 7.6376262 = [-9.8773380, 39.8773380].
    # ROI with margin 0.4: incremental revenue 15 x 3 = 45, cost 3 x 2.0 = 6:
    #   (45 x 0.4 - 6) / 6 = 2.0.
    sums = {"n_t": 3, "s_t": 60.0, "q_t": 1400.0, "n_c": 2, "s_c": 10.0, "q_c": 100.0}
    c = F.col
    test = stats.mean_difference(c("n_t"), c("s_t"), c("q_t"), c("n_c"), c("s_c"), c("q_c"))
    got = evaluate(
        spark,
        sums,
        diff=test.interval.estimate,
        low=test.interval.low,
        high=test.interval.high,
        t=test.statistic,
        df=test.degrees_of_freedom,
        p=test.p_value,
        var_t=stats.sample_variance(c("n_t"), c("s_t"), c("q_t")),
        roi=stats.roi(test.interval.estimate * c("n_t"), 0.4, c("n_t") * 2.0),
    )
    assert got["var_t"] == pytest.approx(100.0, abs=1e-9)
    assert got["diff"] == pytest.approx(15.0, abs=1e-12)
    assert got["t"] == pytest.approx(1.9639610, abs=1e-6)
    assert got["df"] == pytest.approx(2.8823529, abs=1e-6)
    assert got["p"] == pytest.approx(0.1480279, abs=1e-6)
    assert got["low"] == pytest.approx(-9.8773380, abs=1e-6)
    assert got["high"] == pytest.approx(39.8773380, abs=1e-6)
    assert got["roi"] == pytest.approx(2.0, abs=1e-12)
    reference = scipy_stats.ttest_ind_from_stats(20.0, 10.0, 3, 5.0, np.sqrt(50.0), 2, False)
    assert got["t"] == pytest.approx(reference.statistic, rel=1e-12)
    assert got["p"] == pytest.approx(reference.pvalue, rel=1e-9)


def test_degenerate_groups_give_nulls_not_errors(spark: SparkSession) -> None:
    # No controls at all, and no conversions anywhere: nothing to divide by (ANSI mode would
    # raise on a plain division by zero).
    c = F.col
    got = evaluate(
        spark,
        {"n_t": 5, "x_t": 0, "n_c": 0, "x_c": 0},
        uplift=stats.rate_difference(c("n_t"), c("x_t"), c("n_c"), c("x_c")).interval.estimate,
        p=stats.rate_difference(c("n_t"), c("x_t"), c("n_c"), c("x_c")).p_value,
        rel=stats.relative_uplift(c("n_t"), c("x_t"), c("n_c"), c("x_c")).low,
        roi=stats.roi(F.lit(10.0), 1.0, F.lit(0.0)),
    )
    assert got == {"uplift": None, "p": None, "rel": None, "roi": None}


# (treated, converted, controls, converted): large, small, lopsided and extreme groups.
PROPORTION_CASES = [
    (1000, 120, 1000, 100),
    (50000, 2600, 5000, 240),
    (10, 3, 7, 0),
    (33, 1, 2, 1),
    (400, 400, 90, 12),
    (200000, 30, 20000, 1),
]


def test_proportions_agree_with_statsmodels(spark: SparkSession) -> None:
    frame = spark.createDataFrame(PROPORTION_CASES, "n_t long, x_t long, n_c long, x_c long")
    c = F.col
    diff = stats.rate_difference(c("n_t"), c("x_t"), c("n_c"), c("x_c"))
    rel = stats.relative_uplift(c("n_t"), c("x_t"), c("n_c"), c("x_c"))
    rows = frame.select(
        "n_t", "x_t", "n_c", "x_c",
        diff.interval.low.alias("low"), diff.interval.high.alias("high"),
        diff.statistic.alias("z"), diff.p_value.alias("p"),
        rel.low.alias("rel_low"), rel.high.alias("rel_high"),
    ).collect()  # fmt: skip
    assert len(rows) == len(PROPORTION_CASES)
    for r in rows:
        case = (r.n_t, r.x_t, r.n_c, r.x_c)
        low, high = confint_proportions_2indep(
            r.x_t, r.n_t, r.x_c, r.n_c, method="agresti-caffo", compare="diff"
        )
        assert (r.low, r.high) == pytest.approx((low, high), rel=1e-9), case
        z, p = proportions_ztest([r.x_t, r.x_c], [r.n_t, r.n_c])
        assert (r.z, r.p) == pytest.approx((z, p), rel=1e-9), case
        if r.x_t and r.x_c:
            rr_low, rr_high = confint_proportions_2indep(
                r.x_t, r.n_t, r.x_c, r.n_c, method="log", compare="ratio"
            )
            assert (r.rel_low, r.rel_high) == pytest.approx((rr_low - 1, rr_high - 1), rel=1e-9)
        else:
            assert (r.rel_low, r.rel_high) == (None, None), case


def test_welch_agrees_with_scipy_on_small_and_unequal_groups(spark: SparkSession) -> None:
    # (n, mean, sd) of treated and controls: the segment breakdowns' small control groups.
    cases = [
        (3, 20.0, 10.0, 2, 5.0, 7.0),
        (250, 41.5, 30.2, 12, 30.1, 55.0),
        (5000, 8.2, 20.0, 33, 7.9, 3.1),
    ]

    def sums_of(n: int, mean: float, sd: float) -> tuple[int, float, float]:
        return n, mean * n, (n - 1) * sd**2 + n * mean**2

    sums = [sums_of(*case[:3]) + sums_of(*case[3:]) for case in cases]
    frame = spark.createDataFrame(
        sums, "n_t long, s_t double, q_t double, n_c long, s_c double, q_c double"
    )
    c = F.col
    test = stats.mean_difference(c("n_t"), c("s_t"), c("q_t"), c("n_c"), c("s_c"), c("q_c"))
    rows = frame.select(
        "n_t", test.statistic.alias("t"), test.p_value.alias("p"),
        test.interval.low.alias("low"), test.interval.high.alias("high"),
        test.degrees_of_freedom.alias("df"),
    ).collect()  # fmt: skip
    by_n = {r.n_t: r for r in rows}
    for n_t, m_t, s_t, n_c, m_c, s_c in cases:
        r = by_n[n_t]
        reference = scipy_stats.ttest_ind_from_stats(m_t, s_t, n_t, m_c, s_c, n_c, False)
        assert (r.t, r.p) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-8)
        half = scipy_stats.t.ppf(0.975, r.df) * np.sqrt(s_t**2 / n_t + s_c**2 / n_c)
        assert (r.low, r.high) == pytest.approx((m_t - m_c - half, m_t - m_c + half), rel=1e-8)


def test_a_tiny_p_value_keeps_its_digits(spark: SparkSession) -> None:
    (p,) = spark.range(1).select(stats.two_sided_p(F.lit(6.0))).first()  # type: ignore[misc]
    assert p == pytest.approx(2 * scipy_stats.norm.sf(6.0), rel=1e-12)
    assert p == pytest.approx(1.973175290075e-09, rel=1e-9)

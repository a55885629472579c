"""Uplift statistics as Spark SQL Column expressions over per-group sums.

The inputs are a handful of aggregate rows (campaigns x breakdown values), so the estimates and
intervals run as plain column arithmetic next to the data instead of on the driver. Every
function is null-safe: a ratio with a zero denominator is null (`try_divide`), never an error
under ANSI mode, and nulls propagate to the intervals and p-values that depend on them.

Spark SQL has no normal or Student-t distribution functions, so the tail probabilities and the
t quantile come from scipy's special functions through vectorized (Arrow) pandas UDFs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType
from scipy import special

# Two-sided 95%: the 97.5th percentile of the standard normal.
Z_95 = float(special.ndtri(0.975))


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double, null when the denominator is 0 or null."""
    return F.try_divide(numerator.cast("double"), denominator.cast("double"))


@F.pandas_udf(DoubleType())  # type: ignore[call-overload]
def _normal_two_sided_p(z: pd.Series) -> pd.Series:
    return pd.Series(2.0 * special.ndtr(-np.abs(z.to_numpy(dtype=float))))


@F.pandas_udf(DoubleType())  # type: ignore[call-overload]
def _t_two_sided_p(t: pd.Series, df: pd.Series) -> pd.Series:
    return pd.Series(
        2.0 * special.stdtr(df.to_numpy(dtype=float), -np.abs(t.to_numpy(dtype=float)))
    )


@F.pandas_udf(DoubleType())  # type: ignore[call-overload]
def _t_quantile_975(df: pd.Series) -> pd.Series:
    return pd.Series(special.stdtrit(df.to_numpy(dtype=float), 0.975))


def two_sided_p(z: Column) -> Column:
    """P(|Z| >= |z|) for a standard normal Z; null for a null z."""
    return F.when(z.isNotNull(), _normal_two_sided_p(z))


@dataclass(frozen=True)
class Interval:
    estimate: Column
    low: Column
    high: Column


@dataclass(frozen=True)
class Test:
    """An estimate with its 95% interval, test statistic (z or t) and two-sided p-value."""

    interval: Interval
    statistic: Column
    p_value: Column


def rate_difference(
    treated: Column, converted_t: Column, control: Column, converted_c: Column
) -> Test:
    """Absolute uplift p_t - p_c of two proportions.

    The interval is Agresti-Caffo's: the Wald interval after adding one conversion and one
    non-conversion to each group. The plain Wald interval has no width on a side with no
    conversions (or only conversions), and its coverage falls far below 95% on the small
    control groups of a segment breakdown. The test is the two-proportion z-test, whose
    standard error pools both groups under the null hypothesis of no difference.
    """
    p_t, p_c = ratio(converted_t, treated), ratio(converted_c, control)
    diff = p_t - p_c
    a_t, a_c = ratio(converted_t + 1, treated + 2), ratio(converted_c + 1, control + 2)
    se = F.sqrt(ratio(a_t * (1.0 - a_t), treated + 2) + ratio(a_c * (1.0 - a_c), control + 2))
    both = (treated > 0) & (control > 0)
    centre = a_t - a_c
    pooled = ratio(converted_t + converted_c, treated + control)
    se_null = F.sqrt(
        pooled * (1.0 - pooled) * (ratio(F.lit(1), treated) + ratio(F.lit(1), control))
    )
    z = ratio(diff, se_null)
    interval = Interval(diff, F.when(both, centre - Z_95 * se), F.when(both, centre + Z_95 * se))
    return Test(interval, z, two_sided_p(z))


def relative_uplift(
    treated: Column, converted_t: Column, control: Column, converted_c: Column
) -> Interval:
    """p_t / p_c - 1 with the log risk-ratio interval (Katz): exp(log RR +- z se) - 1.

    se^2 = 1/x_t - 1/n_t + 1/x_c - 1/n_c; undefined (null) when either group has no conversion.
    """
    risk_ratio = ratio(ratio(converted_t, treated), ratio(converted_c, control))
    defined = (converted_t > 0) & (converted_c > 0)
    se = F.sqrt(
        ratio(F.lit(1), converted_t)
        - ratio(F.lit(1), treated)
        + ratio(F.lit(1), converted_c)
        - ratio(F.lit(1), control)
    )
    log_rr = F.log(risk_ratio)
    return Interval(
        risk_ratio - 1.0,
        F.when(defined, F.exp(log_rr - Z_95 * se) - 1.0),
        F.when(defined, F.exp(log_rr + Z_95 * se) - 1.0),
    )


def sample_variance(n: Column, total: Column, sum_of_squares: Column) -> Column:
    """Unbiased variance from n, sum x and sum x^2 (clipped at 0 against rounding)."""
    return F.greatest(ratio(sum_of_squares - ratio(total * total, n), n - 1), F.lit(0.0))


def welch_degrees_of_freedom(
    variance_t: Column, n_t: Column, variance_c: Column, n_c: Column
) -> Column:
    """Welch-Satterthwaite degrees of freedom; null below two customers in a group."""
    a, b = ratio(variance_t, n_t), ratio(variance_c, n_c)
    return ratio((a + b) * (a + b), ratio(a * a, n_t - 1) + ratio(b * b, n_c - 1))


@dataclass(frozen=True)
class WelchTest(Test):
    degrees_of_freedom: Column


def mean_difference(
    n_t: Column, sum_t: Column, squares_t: Column, n_c: Column, sum_c: Column, squares_c: Column
) -> WelchTest:
    """Difference of two means (revenue per customer) by Welch's t-test.

    The t distribution with Welch-Satterthwaite degrees of freedom, not the normal: a segment
    breakdown leaves control groups of a handful of customers, where the normal approximation
    makes intervals too narrow and p-values too small.
    """
    var_t = sample_variance(n_t, sum_t, squares_t)
    var_c = sample_variance(n_c, sum_c, squares_c)
    diff = ratio(sum_t, n_t) - ratio(sum_c, n_c)
    se = F.sqrt(ratio(var_t, n_t) + ratio(var_c, n_c))
    t = ratio(diff, se)
    df = welch_degrees_of_freedom(var_t, n_t, var_c, n_c)
    defined = t.isNotNull() & df.isNotNull()
    half_width = F.when(defined, _t_quantile_975(df)) * se
    return WelchTest(
        Interval(diff, F.when(defined, diff - half_width), F.when(defined, diff + half_width)),
        t,
        F.when(defined, _t_two_sided_p(t, df)),
        df,
    )


def roi(incremental_revenue: Column, gross_margin: float, cost: Column) -> Column:
    """(incremental revenue x gross margin - cost) / cost; null without a cost."""
    return ratio(incremental_revenue * gross_margin - cost, cost)

"""Uplift statistics as Spark SQL Column expressions over per-group sums.

The inputs are a handful of aggregate rows (campaigns x breakdown values), so the maths runs as
plain column arithmetic next to the data instead of on the driver or in a Python UDF. Every
function is null-safe: a ratio with a zero denominator is null (`try_divide`), never an error
under ANSI mode, and nulls propagate to the intervals and p-values that depend on them.

Spark SQL has no normal CDF, so p-values use `erfc` below (a Chebyshev fit with a fractional
error under 1.2e-7 everywhere, which keeps even very small p-values accurate to 7 digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

# Two-sided 95%: the 97.5th percentile of the standard normal.
Z_95 = 1.959963984540054

# erfc(z) ~ t * exp(-z^2 + P(t)), t = 1 / (1 + z / 2), z >= 0: the coefficients of P in t^0..t^9
# (Press et al., Numerical Recipes, 2nd ed., section 6.2, "erfcc").
_ERFC_COEFFICIENTS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double, null when the denominator is 0 or null."""
    return F.try_divide(numerator.cast("double"), denominator.cast("double"))


def erfc(x: Column) -> Column:
    """The complementary error function, accurate to a relative 1.2e-7 for every x."""
    z = F.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    # Horner's scheme from the highest coefficient down.
    highest, *lower = reversed(_ERFC_COEFFICIENTS)
    poly = reduce(lambda acc, c: acc * t + c, lower, F.lit(highest))
    tail = t * F.exp(-z * z + poly)
    return F.when(x >= 0, tail).otherwise(2.0 - tail)


def two_sided_p(z: Column) -> Column:
    """P(|Z| >= |z|) for a standard normal Z: erfc(|z| / sqrt 2)."""
    return erfc(F.abs(z) / F.sqrt(F.lit(2.0)))


@dataclass(frozen=True)
class Interval:
    estimate: Column
    low: Column
    high: Column


@dataclass(frozen=True)
class Test:
    """An estimate with its 95% interval, test statistic and two-sided p-value."""

    interval: Interval
    z: Column
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


def mean_difference(
    n_t: Column, sum_t: Column, squares_t: Column, n_c: Column, sum_c: Column, squares_c: Column
) -> Test:
    """Difference of two means (revenue per customer): Welch's standard error, and the normal
    approximation of its t statistic (the groups hold hundreds of customers or more)."""
    diff = ratio(sum_t, n_t) - ratio(sum_c, n_c)
    se = F.sqrt(
        ratio(sample_variance(n_t, sum_t, squares_t), n_t)
        + ratio(sample_variance(n_c, sum_c, squares_c), n_c)
    )
    z = ratio(diff, se)
    return Test(Interval(diff, diff - Z_95 * se, diff + Z_95 * se), z, two_sided_p(z))


def roi(incremental_revenue: Column, gross_margin: float, cost: Column) -> Column:
    """(incremental revenue x gross margin - cost) / cost; null without a cost."""
    return ratio(incremental_revenue * gross_margin - cost, cost)

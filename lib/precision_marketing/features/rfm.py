"""RFM scores (quintiles 1-5) and the classic segment names of the R x FM grid.

Quintile cut points come from one `percentile_approx` aggregate over the buyers (a one-row
frame, cross-joined back), so scoring never ranks the whole population in a single partition.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

QUINTILE_CUTS = [0.2, 0.4, 0.6, 0.8]

# The standard R x FM grid: rows are R (recency score), columns FM = ceil((F + M) / 2).
RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    #     FM=1               FM=2                  FM=3                  FM=4               FM=5
    5: ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"),
    3: ("Needs attention", "Needs attention", "Needs attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Cannot lose them"),
    1: ("Lost", "Lost", "At risk", "At risk", "Cannot lose them"),
}
NO_PURCHASE = "No purchase"


def fm_score(frequency: Column, monetary: Column) -> Column:
    """The grid's column: the mean of F and M, rounded half up."""
    return F.ceil((frequency + monetary) / 2).cast("int")


def rfm_segment(recency: Column, frequency: Column, monetary: Column) -> Column:
    """Segment name of an (R, F, M) score triple; null scores (no purchase) -> NO_PURCHASE."""
    fm = fm_score(frequency, monetary)
    name = F.when(recency.isNull() | fm.isNull(), F.lit(NO_PURCHASE))
    for r, row in RFM_GRID.items():
        for col_no, label in enumerate(row, start=1):
            name = name.when((recency == r) & (fm == col_no), F.lit(label))
    return name


def _score(value: Column, cuts: Column, higher_is_better: bool) -> Column:
    """Which fifth the value falls in, counted by the cuts it lies above (5 = best fifth)."""
    above = F.size(F.filter(cuts, lambda c: value > c))
    return (1 + above if higher_is_better else 5 - above).cast("int")


def with_rfm(
    df: DataFrame, recency: str, frequency: str, monetary: str, buyer: Column
) -> DataFrame:
    """Adds rfm_r, rfm_f, rfm_m, rfm_fm and rfm_segment; scored among rows where `buyer` holds.

    Recency is "days since", so fewer days scores higher; non-buyers get null scores.
    """
    cuts = df.where(buyer).agg(
        F.percentile_approx(recency, QUINTILE_CUTS).alias("_r_cuts"),
        F.percentile_approx(frequency, QUINTILE_CUTS).alias("_f_cuts"),
        F.percentile_approx(monetary, QUINTILE_CUTS).alias("_m_cuts"),
    )
    scored = df.crossJoin(F.broadcast(cuts))
    r = F.when(buyer, _score(F.col(recency), F.col("_r_cuts"), higher_is_better=False))
    f = F.when(buyer, _score(F.col(frequency), F.col("_f_cuts"), higher_is_better=True))
    m = F.when(buyer, _score(F.col(monetary), F.col("_m_cuts"), higher_is_better=True))
    return (
        scored.withColumns({"rfm_r": r, "rfm_f": f, "rfm_m": m})
        .withColumns(
            {
                "rfm_fm": fm_score(F.col("rfm_f"), F.col("rfm_m")),
                "rfm_segment": rfm_segment(F.col("rfm_r"), F.col("rfm_f"), F.col("rfm_m")),
            }
        )
        .drop("_r_cuts", "_f_cuts", "_m_cuts")
    )

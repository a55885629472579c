"""Per-cluster profiles: size, share, mean and median of the key features, standardized means.

Each aggregation returns one row per cluster (k rows) or one row in all, so the results are
collected to the driver, where naming rules and the report read them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing.segment.model import CLUSTER, model_column
from precision_marketing.segment.naming import Profile


def cluster_profiles(
    predictions: DataFrame, profile_features: Sequence[str], model_features: Sequence[str]
) -> list[Profile]:
    """Profiles ordered by cluster index; z compares prepared means with the population's."""
    model_cols = [model_column(f) for f in model_features]
    population = predictions.agg(
        F.count(F.lit(1)).alias("_n"),
        *(F.avg(c).alias(f"mean_{c}") for c in model_cols),
        *(F.stddev_pop(c).alias(f"sd_{c}") for c in model_cols),
    ).first()
    assert population is not None
    total = int(population["_n"])
    # One row per segment (k rows): safe to bring to the driver.
    rows = (
        predictions.groupBy(CLUSTER)
        .agg(
            F.count(F.lit(1)).alias("_size"),
            *(F.avg(f).alias(f"mean_{f}") for f in profile_features),
            *(F.percentile_approx(f, 0.5).alias(f"median_{f}") for f in profile_features),
            *(F.avg(c).alias(f"mean_{c}") for c in model_cols),
        )
        .orderBy(CLUSTER)
        .collect()
    )
    profiles = []
    for row in rows:
        z = {}
        for feature, col in zip(model_features, model_cols, strict=True):
            sd = population[f"sd_{col}"] or 0.0
            z[feature] = (row[f"mean_{col}"] - population[f"mean_{col}"]) / sd if sd > 0 else 0.0
        profiles.append(
            Profile(
                cluster=int(row[CLUSTER]),
                size=int(row["_size"]),
                share=int(row["_size"]) / total,
                means={f: _float(row[f"mean_{f}"]) for f in profile_features},
                medians={f: _float(row[f"median_{f}"]) for f in profile_features},
                z=z,
            )
        )
    return profiles


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def migrations(previous: DataFrame, current: DataFrame) -> DataFrame:
    """How many customers moved from which segment to which (null: not in that snapshot)."""
    before = previous.select("customer_id", F.col("segment_id").alias("from_segment_id"))
    after = current.select("customer_id", F.col("segment_id").alias("to_segment_id"))
    return (
        before.join(after, "customer_id", "full")
        .groupBy("from_segment_id", "to_segment_id")
        .agg(F.count(F.lit(1)).alias("customers"))
    )

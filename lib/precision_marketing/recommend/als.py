"""Fitting implicit ALS.

Scoring is topk.recommend_for_users on the factor tables. `factor_model` turns any two factor
tables into an ALSModel: bench/topk_scale.py uses it to time MLlib's own top-k against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession

from precision_marketing.io import files

USER = "customer_idx"
ITEM = "item_idx"


@dataclass(frozen=True, order=True)
class AlsParams:
    rank: int
    reg_param: float
    alpha: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fit(
    interactions: DataFrame,
    params: AlsParams,
    max_iter: int,
    seed: int,
    checkpoint_interval: int,
    num_blocks: int = 0,
) -> ALSModel:
    """Implicit-feedback ALS on (customer_idx, item_idx, confidence); the seed fixes the result.

    checkpointInterval only acts when the session has a checkpoint dir (the job sets one):
    without it, the lineage of many iterations overflows the stack on a second fit.
    """
    als = ALS(
        userCol=USER,
        itemCol=ITEM,
        ratingCol="confidence",
        implicitPrefs=True,
        rank=params.rank,
        regParam=params.reg_param,
        alpha=params.alpha,
        maxIter=max_iter,
        seed=seed,
        checkpointInterval=checkpoint_interval,
        coldStartStrategy="drop",
        nonnegative=False,
    )
    if num_blocks > 0:
        als = als.setNumUserBlocks(num_blocks).setNumItemBlocks(num_blocks)
    return als.fit(interactions)


def factor_model(
    spark: SparkSession, saved_model: str, users: DataFrame, items: DataFrame, path: str
) -> ALSModel:
    """An ALSModel at `path` with the metadata of the model saved at `saved_model` and the given
    (id, features array<float>) factor tables, in ALSModel's own save layout."""
    meta = spark.read.text(f"{saved_model}/metadata").first()  # one line of JSON
    assert meta is not None
    files.write_text(spark, f"{path}/metadata/part-00000", str(meta[0]))
    users.write.mode("overwrite").parquet(f"{path}/userFactors")
    items.write.mode("overwrite").parquet(f"{path}/itemFactors")
    return ALSModel.load(path)

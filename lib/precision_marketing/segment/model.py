"""The segmentation model: prepare features, choose k by silhouette, fit KMeans, keep ids stable.

The Spark ML Pipeline is SQLTransformer (fill "days since" nulls with a cap, log1p of skewed
counts and amounts) -> Imputer (median of the rest) -> VectorAssembler -> StandardScaler ->
KMeans. Everything brought to the driver here is bounded by k and the number of features.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import (
    Imputer,
    SQLTransformer,
    StandardScaler,
    StandardScalerModel,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment

from precision_marketing.config import ConfigError, SegmentConfig
from precision_marketing.features import availability

VECTOR = "features_scaled"
CLUSTER = "cluster"

log = logging.getLogger(__name__)


def model_column(feature: str) -> str:
    """The prepared (filled, log-scaled, imputed) value of a feature, as the model sees it."""
    return f"model_{feature}"


def _prepared_expr(feature: str, params: SegmentConfig) -> str:
    if feature.startswith("days_since"):
        # Never happened = as long ago as the cap; anything older is clipped to it.
        return f"least(coalesce(cast(`{feature}` as double), {params.days_cap}), {params.days_cap})"
    if feature in params.log_features:
        return f"log1p(greatest(coalesce(cast(`{feature}` as double), 0), 0))"
    return f"cast(`{feature}` as double)"


def prepared_expressions(params: SegmentConfig) -> dict[str, str]:
    """feature -> the value the model sees before imputation (what the availability check reads)."""
    return {f: _prepared_expr(f, params) for f in params.model_features}


def resolved(params: SegmentConfig, columns: Sequence[str]) -> SegmentConfig:
    """`params` with globs in model_features / log_features expanded against the snapshot."""
    return replace(
        params,
        model_features=availability.expand(params.model_features, columns),
        log_features=availability.expand(params.log_features, columns),
    )


def for_fit(params: SegmentConfig, checked: availability.FeatureCheck) -> SegmentConfig:
    """`params` narrowed to the features the availability check kept."""
    return replace(
        params,
        model_features=checked.used,
        log_features=[f for f in params.log_features if f in checked.used],
    )


def check_features(columns: Sequence[str], params: SegmentConfig) -> None:
    if not params.model_features:
        raise ConfigError("segment.model_features is empty")
    missing = [f for f in params.model_features if f not in columns]
    if missing:
        raise ConfigError(f"segment.model_features: '{missing[0]}' is not a user_features column")


def preparation(params: SegmentConfig) -> Pipeline:
    """The stages before KMeans; fitted once per training and reused for every k."""
    features = params.model_features
    raw = [f"_raw_{f}" for f in features]
    select = ", ".join(
        f"{_prepared_expr(f, params)} AS `{r}`" for f, r in zip(features, raw, strict=True)
    )
    return Pipeline(
        stages=[
            SQLTransformer(statement=f"SELECT *, {select} FROM __THIS__"),
            Imputer(
                inputCols=raw, outputCols=[model_column(f) for f in features], strategy="median"
            ),
            VectorAssembler(
                inputCols=[model_column(f) for f in features],
                outputCol="features_raw",
                handleInvalid="keep",
            ),
            StandardScaler(inputCol="features_raw", outputCol=VECTOR, withMean=True, withStd=True),
        ]
    )


def kmeans(k: int, params: SegmentConfig) -> KMeans:
    return KMeans(
        k=k,
        seed=params.seed,
        maxIter=params.max_iter,
        featuresCol=VECTOR,
        predictionCol=CLUSTER,
    )


def silhouette(predictions: DataFrame) -> float:
    evaluator = ClusteringEvaluator(featuresCol=VECTOR, predictionCol=CLUSTER)
    return float(evaluator.evaluate(predictions))


def k_range(params: SegmentConfig, customers: int) -> range:
    """[k_min, k_max], k_max lowered to customers / min_segment_customers (never below k_min):
    on a small shop silhouette keeps rising with k towards segments of two or three."""
    if not 2 <= params.k_min <= params.k_max:
        raise ConfigError("segment: need 2 <= k_min <= k_max")
    k_max = min(params.k_max, max(params.k_min, customers // params.min_segment_customers))
    if k_max < params.k_max:
        log.info(
            "segment: k_max %d lowered to %d for %d customers (segment.min_segment_customers=%d)",
            params.k_max,
            k_max,
            customers,
            params.min_segment_customers,
        )
    return range(params.k_min, k_max + 1)


def select_k(
    prepared: DataFrame, params: SegmentConfig, customers: int
) -> tuple[int, dict[int, float], dict[int, KMeansModel]]:
    """The k of `k_range` with the best silhouette among those whose smallest cluster holds at
    least segment.min_segment_share of the customers; every k's score and fitted model.

    Silhouette alone favours splitting off a handful of outliers, a segment no campaign can use.
    `prepared` should be persisted (and sampled to segment.selection_sample by the caller):
    each k fits and scores it once.
    """
    if params.k is not None:
        return params.k, {}, {}
    scores, models, smallest = {}, {}, {}
    for k in k_range(params, customers):
        models[k] = kmeans(k, params).fit(prepared)
        scores[k] = silhouette(models[k].transform(prepared))
        sizes = models[k].summary.clusterSizes
        smallest[k] = min(sizes) / sum(sizes)
    allowed = [k for k in scores if smallest[k] >= params.min_segment_share] or [min(scores)]
    for k in sorted(set(scores) - set(allowed)):
        log.info(
            "segment: k=%d not chosen: smallest cluster %.1f%% < segment.min_segment_share %.1f%%",
            k, 100 * smallest[k], 100 * params.min_segment_share,
        )  # fmt: skip
    best = max(allowed, key=lambda k: (scores[k], -k))  # ties: the smaller k
    return best, scores, models


@dataclass(frozen=True)
class Fitted:
    pipeline: PipelineModel  # preparation + KMeans, the saved model
    prepared: PipelineModel
    kmeans: KMeansModel

    @property
    def scaler(self) -> StandardScalerModel:
        stage = self.prepared.stages[-1]
        assert isinstance(stage, StandardScalerModel)
        return stage

    def centers_scaled(self) -> np.ndarray:
        return np.array(self.kmeans.clusterCenters())

    def centers_prepared(self) -> np.ndarray:
        """Centroids back in the prepared (log-scaled) feature space, comparable across fits."""
        mean = self.scaler.mean.toArray()
        std = self.scaler.std.toArray()
        return self.centers_scaled() * std + mean


def fit_kmeans(
    prep: PipelineModel,
    prepared: DataFrame,
    k: int,
    params: SegmentConfig,
    fitted: KMeansModel | None = None,
) -> Fitted:
    """The full pipeline model; `fitted` is reused when k was selected on the same rows."""
    model = fitted or kmeans(k, params).fit(prepared)
    stages: list[Transformer] = [*prep.stages, model]
    return Fitted(PipelineModel(stages=stages), prep, model)


def distance_to_center(centers: np.ndarray) -> Column:
    """Euclidean distance (scaled space) of each row's vector to its own cluster's centroid."""
    literal = F.array(*(F.array(*(F.lit(float(v)) for v in row)) for row in centers))
    center = F.element_at(literal, F.col(CLUSTER) + 1)
    squares = F.zip_with(vector_to_array(F.col(VECTOR)), center, lambda a, b: (a - b) * (a - b))
    return F.sqrt(F.aggregate(squares, F.lit(0.0), lambda acc, x: acc + x))


@dataclass(frozen=True)
class Previous:
    """What a retrain needs from the previous model version to keep segment ids."""

    version: str
    features: list[str]
    centers: np.ndarray  # prepared space, one row per previous cluster index
    ids: list[int]
    names: list[str]


def match_clusters(
    centers: np.ndarray, scale: np.ndarray, previous: Previous | None
) -> dict[int, int]:
    """new cluster index -> previous cluster index, by Hungarian assignment on centroid distance.

    Distances are measured in the prepared space divided by the current feature scale, so every
    feature counts as it does in the model. With a different k, the extra clusters stay unmatched.
    """
    if previous is None or len(previous.centers) == 0:
        return {}
    safe = np.where(scale > 0, scale, 1.0)
    diff = (centers[:, None, :] - previous.centers[None, :, :]) / safe
    cost = np.sqrt((diff**2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def assign_ids(
    sizes: Sequence[int], matched: dict[int, int], previous: Previous | None
) -> list[int]:
    """Segment id per cluster index: a matched cluster keeps its previous id; new ones get
    fresh ids above every id used before, biggest cluster first (ties: lower index)."""
    ids: list[int | None] = [None] * len(sizes)
    if previous is not None:
        for new, old in matched.items():
            ids[new] = previous.ids[old]
    next_id = max(previous.ids, default=0) + 1 if previous else 1
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        if ids[index] is None:
            ids[index] = next_id
            next_id += 1
    return [int(i) for i in ids if i is not None]

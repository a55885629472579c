"""The propensity models as Spark ML pipelines.

Preparation: SQLTransformer (derived rates, "days since" caps, log1p, categorical nulls named)
-> Imputer (median) -> StringIndexer + OneHotEncoder of the categoricals -> VectorAssembler ->
StandardScaler. Every model reads that one scaled vector, so a LogisticRegression coefficient
is the change in log-odds per standard deviation of its input: the standardized coefficient.
Everything brought to the driver here is bounded by the number of features or grid points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import GBTClassifier, LogisticRegression, LogisticRegressionModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import GeneralizedLinearRegression, IsotonicRegression
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing.config import ConfigError, PropensityConfig
from precision_marketing.features import availability
from precision_marketing.propensity.transforms import HISTORY_DAYS, LABEL, WEIGHT

ASSEMBLED = "features_raw"
VECTOR = "features_scaled"
MARGIN = "margin"  # the LogisticRegression's log-odds (before calibration)
RAW_PROBABILITY = "raw_probability"
PLATT_MAX_ITER = 30
MISSING = "missing"  # a categorical that is null (e.g. never visited: no platform)


def numeric_column(feature: str) -> str:
    return f"num_{feature}"


def check_features(columns: Sequence[str], cfg: PropensityConfig) -> None:
    """Names a configured feature that neither user_features nor derived_features provide."""
    if not cfg.model_features:
        raise ConfigError("propensity.model_features is empty")
    known = {*columns, *cfg.derived_features, HISTORY_DAYS}
    for name in [*cfg.model_features, *cfg.categorical_features]:
        if name not in known:
            raise ConfigError(f"propensity: '{name}' is not a user_features or derived column")
    for name in cfg.log_features:
        if name not in cfg.model_features:
            raise ConfigError(f"propensity.log_features: '{name}' is not in model_features")


def resolved(cfg: PropensityConfig, columns: Sequence[str]) -> PropensityConfig:
    """`cfg` with globs in model_features / log_features ("spend_share_*") expanded against
    the user_features and derived columns: the category columns come from the data."""
    known = [*columns, *cfg.derived_features]
    return replace(
        cfg,
        model_features=availability.expand(cfg.model_features, known),
        log_features=availability.expand(cfg.log_features, known),
    )


def with_derived(df: DataFrame, cfg: PropensityConfig) -> DataFrame:
    """`df` plus the derived_features columns (the same expressions preparation() adds)."""
    for name, expr in cfg.derived_features.items():
        df = df.withColumn(name, F.expr(expr))
    return df


def numeric_expressions(cfg: PropensityConfig) -> dict[str, str]:
    """feature -> the value the model sees before imputation (what the availability check
    reads, on rows that carry the derived features)."""
    return {f: _numeric_expr(f, cfg) for f in cfg.model_features}


def for_fit(cfg: PropensityConfig, checked: availability.FeatureCheck) -> PropensityConfig:
    """`cfg` narrowed to the features the availability check kept."""
    return replace(
        cfg,
        model_features=checked.used,
        log_features=[f for f in cfg.log_features if f in checked.used],
        categorical_features=checked.used_categorical,
    )


def _numeric_expr(feature: str, cfg: PropensityConfig) -> str:
    value = f"cast(`{feature}` as double)"
    if feature.startswith("days_since"):
        # Never happened = as long ago as the cap; anything older is clipped to it.
        return f"least(coalesce({value}, {cfg.days_cap}), {cfg.days_cap})"
    if feature in cfg.log_features:
        # Nulls stay null for the Imputer (greatest() alone would turn them into 0).
        return f"if({value} IS NULL, NULL, log1p(greatest({value}, 0)))"
    return value


def preparation(cfg: PropensityConfig) -> Pipeline:
    """The stages every model shares, fitted once on the training rows."""
    numeric = [numeric_column(f) for f in cfg.model_features]
    selects = [
        *(f"{_numeric_expr(f, cfg)} AS `{c}`" for f, c in zip(cfg.model_features, numeric,
                                                               strict=True)),
        *(f"coalesce(cast(`{c}` as string), '{MISSING}') AS `cat_{c}`"
          for c in cfg.categorical_features),
    ]  # fmt: skip
    imputed = [f"imp_{c}" for c in numeric]
    categorical = [f"cat_{c}" for c in cfg.categorical_features]
    stages: list[Any] = [
        # One derived column per stage, in config order: a later one may use an earlier one.
        *(
            SQLTransformer(statement=f"SELECT *, {expr} AS `{name}` FROM __THIS__")
            for name, expr in cfg.derived_features.items()
        ),
        SQLTransformer(statement=f"SELECT *, {', '.join(selects)} FROM __THIS__"),
        Imputer(inputCols=numeric, outputCols=imputed, strategy="median"),
    ]
    encoded: list[str] = []
    if categorical:
        indexed = [f"idx_{c}" for c in cfg.categorical_features]
        encoded = [f"ohe_{c}" for c in cfg.categorical_features]
        stages += [
            # Alphabetical indexes: the same category gets the same slot in every retrain.
            StringIndexer(
                inputCols=categorical,
                outputCols=indexed,
                stringOrderType="alphabetAsc",
                handleInvalid="keep",
            ),
            OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        ]
    stages += [
        VectorAssembler(inputCols=[*imputed, *encoded], outputCol=ASSEMBLED),
        StandardScaler(inputCol=ASSEMBLED, outputCol=VECTOR, withMean=True, withStd=True),
    ]
    return Pipeline(stages=stages)


def slot_names(prepared: DataFrame, cfg: PropensityConfig) -> list[str]:
    """The model-facing name of every vector slot, from the assembler's ML attributes."""
    meta = prepared.schema[ASSEMBLED].metadata.get("ml_attr", {})
    slots: dict[int, str] = {}
    for group in meta.get("attrs", {}).values():
        for attr in group:
            slots[int(attr["idx"])] = str(attr.get("name", attr["idx"]))
    names = [slots.get(i, str(i)) for i in range(int(meta.get("num_attrs", len(slots))))]
    numeric = {f"imp_{numeric_column(f)}": f for f in cfg.model_features}
    out = []
    for name in names:
        readable = numeric.get(name, name)
        # The longest matching column first: "age_band" is not a value of a column "age".
        for c in sorted(cfg.categorical_features, key=len, reverse=True):
            if name.startswith(f"ohe_{c}_"):
                readable = f"{c}={name.removeprefix(f'ohe_{c}_')}"
                break
        out.append(readable)
    return out


def logistic(cfg: PropensityConfig, weighted: bool) -> LogisticRegression:
    """Elastic-net LogisticRegression on the already standardized vector."""
    lr = LogisticRegression(
        featuresCol=VECTOR,
        labelCol=LABEL,
        maxIter=cfg.max_iter,
        standardization=False,
        family="binomial",
    )
    if weighted:
        lr.setWeightCol(WEIGHT)
    return lr


def gbt(cfg: PropensityConfig, weighted: bool) -> GBTClassifier:
    """The gradient-boosted tree challenger on the same vector (scaling changes no split).

    Its rawPrediction is (-margin, margin), so `with_margin` and the calibrators read it like
    the logistic model's log-odds.
    """
    trees = GBTClassifier(
        featuresCol=VECTOR,
        labelCol=LABEL,
        maxIter=cfg.gbt.max_iter,
        maxDepth=cfg.gbt.max_depth,
        stepSize=cfg.gbt.step_size,
        seed=cfg.seed,
    )
    if weighted:
        trees.setWeightCol(WEIGHT)
    return trees


def evaluator(
    metric: Literal["areaUnderROC", "areaUnderPR"] = "areaUnderROC", label: str = LABEL
) -> BinaryClassificationEvaluator:
    return BinaryClassificationEvaluator(
        rawPredictionCol="rawPrediction", labelCol=label, metricName=metric
    )


@dataclass(frozen=True)
class GridPoint:
    reg_param: float
    elastic_net_param: float
    metric: float  # the tuning metric on TrainValidationSplit's held-out share

    def as_dict(self) -> dict[str, float]:
        return {"reg_param": self.reg_param, "elastic_net_param": self.elastic_net_param}


@dataclass(frozen=True)
class Tuned:
    model: LogisticRegressionModel
    grid: list[GridPoint]
    best: GridPoint


def tune(prepared: DataFrame, cfg: PropensityConfig) -> Tuned:
    """TrainValidationSplit (seeded) over the grid; the best point refitted on every row.

    `prepared` should be persisted: each grid point reads it.
    """
    lr = logistic(cfg, cfg.class_weights)
    maps = (
        ParamGridBuilder()
        .addGrid(lr.regParam, cfg.grid.reg_param)
        .addGrid(lr.elasticNetParam, cfg.grid.elastic_net_param)
        .build()
    )
    search = TrainValidationSplit(
        estimator=lr,
        estimatorParamMaps=maps,
        evaluator=evaluator(cfg.tuning_metric),
        trainRatio=cfg.train_ratio,
        seed=cfg.seed,
        parallelism=1,
    )
    fitted = search.fit(prepared)
    grid = [
        GridPoint(float(m[lr.regParam]), float(m[lr.elasticNetParam]), float(v))
        for m, v in zip(maps, fitted.validationMetrics, strict=True)
    ]
    best_model = fitted.bestModel
    assert isinstance(best_model, LogisticRegressionModel)
    best = max(grid, key=lambda g: (g.metric, -grid.index(g)))
    return Tuned(best_model, grid, best)


def full_model(prep: PipelineModel, last: Transformer) -> PipelineModel:
    return PipelineModel(stages=[*prep.stages, last])


def with_margin(scored: DataFrame) -> DataFrame:
    """LogisticRegression output -> its log-odds and probability of class 1 as doubles."""
    return scored.withColumns(
        {
            MARGIN: vector_to_array(F.col("rawPrediction"))[1],
            RAW_PROBABILITY: vector_to_array(F.col("probability"))[1],
        }
    ).drop("rawPrediction", "probability", "prediction")


def coefficients(model: LogisticRegressionModel, names: list[str]) -> list[tuple[str, float]]:
    """(feature, standardized coefficient), largest magnitude first."""
    values = [float(v) for v in model.coefficients.toArray()]
    pairs = list(zip(names, values, strict=True))
    return sorted(pairs, key=lambda p: (-abs(p[1]), p[0]))


# ------------------------------------------------------------------------------------------
# Calibration


def calibrator(method: str, score: str, label: str = LABEL) -> Pipeline:
    """Maps a score (higher = likelier) to a probability fitted on observed outcomes.

    Platt: a one-feature logistic regression on the score (strictly monotone, so the ranking
    and its AUC are kept). Isotonic: a monotone step function (pool adjacent violators).
    """
    vector = f"_cal_{score}"
    if method == "platt":
        last: Any = LogisticRegression(
            featuresCol=vector,
            labelCol=label,
            regParam=0.0,
            standardization=False,
            # Two parameters converge in a few iterations; a score that separates the classes
            # perfectly would otherwise iterate towards an infinite slope.
            maxIter=PLATT_MAX_ITER,
            predictionCol="_cal_prediction",
            probabilityCol="_cal_probability",
            rawPredictionCol="_cal_raw",
        )
    elif method == "isotonic":
        last = IsotonicRegression(
            featuresCol=vector, labelCol=label, predictionCol="_cal_prediction", isotonic=True
        )
    else:
        raise ConfigError(f"propensity.calibration: unknown method '{method}'")
    return Pipeline(stages=[VectorAssembler(inputCols=[score], outputCol=vector), last])


def calibrated(model: PipelineModel, df: DataFrame, score: str, out: str) -> DataFrame:
    """Adds `out`, the calibrated probability in [0, 1], and drops the calibrator's columns."""
    scored = model.transform(df)
    if "_cal_probability" in scored.columns:
        value: Column = vector_to_array(F.col("_cal_probability"))[1]
    else:
        value = F.least(F.greatest(F.col("_cal_prediction"), F.lit(0.0)), F.lit(1.0))
    temporary = [c for c in scored.columns if c.startswith("_cal_")]
    return scored.withColumn(out, value).drop(*temporary)


def fold(seed: int) -> Column:
    """0 or 1 per customer, seeded: the two halves of the cross-fitted calibration."""
    return F.pmod(F.xxhash64(F.lit(seed), F.col("customer_id")), F.lit(2))


def cross_calibrated(
    df: DataFrame, method: str, score: str, out: str, seed: int, label: str = LABEL
) -> DataFrame:
    """Out-of-fold calibrated probabilities: each half is mapped by a calibrator fitted on the
    other half, so the calibration measured on `df` is not fitted to the same rows."""
    halves = []
    for k in (0, 1):
        train = df.where(fold(seed) != k)
        fitted = calibrator(method, score, label).fit(train)
        halves.append(calibrated(fitted, df.where(fold(seed) == k), score, out))
    return halves[0].unionByName(halves[1])


# ------------------------------------------------------------------------------------------
# Value and churn


def spend_model(cfg: PropensityConfig, label: str) -> GeneralizedLinearRegression:
    """Spend given a purchase: a gamma GLM with log link, so predictions are positive means
    (a least-squares fit on log spend would predict the geometric mean, too low)."""
    return GeneralizedLinearRegression(
        featuresCol=VECTOR,
        labelCol=label,
        family="gamma",
        link="log",
        regParam=cfg.spend_reg_param,
        maxIter=50,
        predictionCol="predicted_spend",
    )


def churn_model(cfg: PropensityConfig, label: str, best: GridPoint) -> LogisticRegression:
    """P(no purchase in H days) among the recently active, at the propensity model's chosen
    regularization; unweighted, so its output is a probability as it stands."""
    return LogisticRegression(
        featuresCol=VECTOR,
        labelCol=label,
        maxIter=cfg.max_iter,
        standardization=False,
        regParam=best.reg_param,
        elasticNetParam=best.elastic_net_param,
        rawPredictionCol="churn_raw",
        probabilityCol="churn_probability",
        predictionCol="churn_prediction",
    )

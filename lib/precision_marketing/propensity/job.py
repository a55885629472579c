"""propensity: gold/user_features + silver order lines -> calibrated purchase probabilities,
deciles, predicted spend and churn risk for every active customer (gold/propensity).

Trained on features at past as_of dates with the purchases of the H days after each; a
LogisticRegression tuned by TrainValidationSplit and a gradient-boosted tree challenger, the one
scoring higher on a later as_of date (a time-based holdout) serving, judged there against a
recency-only baseline. The serving model's calibration is fitted on the latest snapshot whose
label window has ended by the run date, so the served probabilities follow the latest base rate
(base rates drift: a model calibrated on an older window runs high or low). Snapshots of
user_features these dates need are built by the features stage's own code when missing. A rerun
for the same run date and config rewrites the same partition under the same model version.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import GeneralizedLinearRegressionModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import models, registry, reports, windows
from precision_marketing.config import Config, ConfigError, PropensityConfig
from precision_marketing.definitions import signed_up_before
from precision_marketing.features import availability
from precision_marketing.features import job as features_job
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.propensity import evaluate, model, report, transforms
from precision_marketing.propensity.evaluate import RANK, DecileRow
from precision_marketing.propensity.transforms import (
    CHURN_LABEL,
    LABEL,
    RECENTLY_ACTIVE,
    SPEND_NEXT,
    SPEND_PREVIOUS,
)
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, Persisted, step
from precision_marketing.schemas import gold
from precision_marketing.schemas.ops import PROPENSITY_METRICS as METRICS_SCHEMA
from precision_marketing.schemas.project import conform

log = logging.getLogger(__name__)

FEATURES = "user_features"
PROPENSITY = "propensity"
METRICS = "propensity_metrics"
INPUTS = {
    "user_features": Layer.GOLD,
    "order_lines": Layer.SILVER,
    "customers": Layer.SILVER,
    "items": Layer.SILVER,
}

MODEL = "propensity"
BASELINE = "recency_baseline"
LOGISTIC = "logistic"  # the candidates, by name in ops/propensity_metrics
GBT = "gbt"
CALIBRATION = "calibration"  # the calibration snapshot's figures in ops/propensity_metrics
CHURN = "churn"
SPEND = "spend"
SPEND_BASELINE = "spend_last_period"
RECENCY_SCORE = "recency_score"
PROBABILITY = "probability"


def model_version(cfg: PropensityConfig, as_of: date) -> str:
    return models.version("prop", as_of, cfg)  # logistic or GBT: the winner is in the metrics


def models_path(config: Config, *parts: str) -> str:
    return models.path(config, "propensity", *parts)


def snapshot_dates_present(spark: SparkSession, path: str) -> set[date]:
    """as_of dates already in gold/user_features (one row per snapshot: bounded)."""
    if not tables.is_delta(spark, path):
        return set()
    # One row per snapshot date.
    return {r[0] for r in tables.read(spark, path).select("as_of_date").distinct().collect()}


def ensure_snapshots(ctx: JobContext, dates: list[date]) -> list[date]:
    """Builds the missing user_features snapshots with the features stage; returns them."""
    path = tables.table_path(ctx.config, Layer.GOLD, FEATURES)
    missing = sorted(set(dates) - snapshot_dates_present(ctx.spark, path))
    if missing and not ctx.config.propensity.build_missing_features:
        raise RuntimeError(
            f"{path} has no snapshot for {', '.join(d.isoformat() for d in missing)}: run "
            "features for those run dates or set propensity.build_missing_features=true"
        )
    for day in missing:
        log.info("propensity: building the user_features snapshot for %s", day)
        features_job.build_snapshot(ctx, day)
    return missing


@dataclass(frozen=True)
class Inputs:
    features: DataFrame
    order_lines: DataFrame
    customers: DataFrame
    items: DataFrame
    versions: dict[str, int]

    def snapshot(self, as_of: date) -> DataFrame:
        at = self.features.where(F.col("as_of_date") == F.lit(as_of))
        return transforms.with_history_days(at)

    def labelled(self, as_of: date, cfg: PropensityConfig) -> DataFrame:
        """The as_of snapshot with outcomes over the next H days: training or validation rows."""
        return transforms.labelled(self.snapshot(as_of), self.order_lines, self.items, as_of, cfg)


def read_inputs(spark: SparkSession, config: Config) -> Inputs:
    """Every input pinned at its current Delta version (recorded with the model)."""
    frames, versions = {}, {}
    for name, layer in INPUTS.items():
        path = tables.table_path(config, layer, name)
        current = tables.version(spark, path)
        if current is None:
            raise RuntimeError(f"no {path}: run the stages before propensity first")
        frames[name], versions[name] = tables.read(spark, path, current), current
    return Inputs(
        frames["user_features"],
        frames["order_lines"],
        frames["customers"],
        frames["items"],
        versions,
    )


class Run:
    """What the steps of one run share, and the frames it persisted (released at the end)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.config.propensity
        self.version = model_version(self.cfg, ctx.run_date)
        self.train_dates, self.validation_date = transforms.snapshot_dates(ctx.run_date, self.cfg)
        self.calibration_date = transforms.latest_labelled_date(ctx.run_date, self.cfg)
        self.persisted = Persisted()
        self.keep = self.persisted.keep
        # What the training rows could carry (set by the feature check, before fitting).
        self.features: availability.FeatureCheck | None = None


def run(ctx: JobContext) -> None:
    require(ctx, "propensity")
    r = Run(ctx)
    log.info(
        "propensity as_of=%s model_version=%s train=%s validation=%s",
        ctx.run_date, r.version, [d.isoformat() for d in r.train_dates], r.validation_date,
    )  # fmt: skip
    try:
        _run(r)
    finally:
        # Released even on failure: the pipeline and the tests share one session.
        r.persisted.release()


@dataclass
class Scorers:
    """What scores a run date: fitted today, or a saved version loaded back (`load`)."""

    propensity: PipelineModel  # preparation + LogisticRegression
    calibration: PipelineModel
    spend: Any  # GeneralizedLinearRegressionModel, or None
    churn: Any  # LogisticRegressionModel, or None


@dataclass
class Fitted(Scorers):
    tuned: model.Tuned
    coefficients: list[tuple[str, float]]  # of the logistic candidate, whichever serves
    judged: list[Candidate]  # the candidates on the validation snapshot, the chosen one first


@dataclass(frozen=True)
class Candidate:
    """A fitted propensity model (preparation + classifier) and its validation ranking metrics."""

    name: str
    model: PipelineModel
    metrics: dict[str, float]


def candidates(
    prep: PipelineModel, prepared: DataFrame, tuned: model.Tuned, cfg: PropensityConfig
) -> list[tuple[str, PipelineModel]]:
    """The tuned logistic model and, when enabled, the GBT fitted on the same prepared rows."""
    fitted = [(LOGISTIC, model.full_model(prep, tuned.model))]
    if cfg.gbt.enabled:
        trees = model.gbt(cfg, cfg.class_weights).fit(prepared)
        fitted.append((GBT, model.full_model(prep, trees)))
    return fitted


def challenge(
    fitted: list[tuple[str, PipelineModel]], validation: DataFrame, cfg: PropensityConfig
) -> list[Candidate]:
    """Each candidate's ROC and PR AUC on the labelled validation rows, the winner by
    `tuning_metric` first; a tie keeps the earlier (the logistic model: simpler, explainable)."""
    judged = [
        Candidate(
            name,
            full,
            evaluate.ranking_metrics(
                model.with_margin(full.transform(validation)), model.MARGIN, LABEL
            ),
        )
        for name, full in fitted
    ]
    key = tuning_key(cfg)
    best = max(range(len(judged)), key=lambda i: (judged[i].metrics[key], -i))
    return [judged[best], *(c for i, c in enumerate(judged) if i != best)]


def tuning_key(cfg: PropensityConfig) -> str:
    """The ranking_metrics key of the configured tuning metric."""
    return "roc_auc" if cfg.tuning_metric == "areaUnderROC" else "pr_auc"


def load(spark: SparkSession, config: Config, version: str) -> Scorers:
    """A saved version's models (save_model wrote them; spend and churn when it had them)."""
    directory = models_path(config, version)
    spend = churn = None
    if files.exists(spark, f"{directory}/spend"):
        spend = GeneralizedLinearRegressionModel.load(f"{directory}/spend")
    if files.exists(spark, f"{directory}/churn"):
        churn = LogisticRegressionModel.load(f"{directory}/churn")
    return Scorers(
        PipelineModel.load(f"{directory}/propensity"),
        PipelineModel.load(f"{directory}/calibration"),
        spend,
        churn,
    )


def check_history(r: Run) -> None:
    """Stops before any snapshot is built when the order history cannot hold the configured
    offsets: the oldest training snapshot needs horizon_days of orders before it (history.days
    caps what the run may use), and the validation labels need orders on or after its date."""
    ctx, cfg = r.ctx, r.cfg
    path = tables.table_path(ctx.config, Layer.SILVER, "order_lines")
    if not tables.is_delta(ctx.spark, path):
        return  # read_inputs names the missing table
    before = tables.read(ctx.spark, path).where(F.col("order_date") < F.lit(ctx.run_date))
    span = before.agg(F.min("order_date"), F.max("order_date")).first()  # one row
    assert span is not None
    first, last = span[0], span[1]
    oldest = max(cfg.train_as_of_offsets_days)
    needed = oldest + cfg.horizon_days
    if first is None:
        raise ConfigError(f"propensity: {path} has no orders before {ctx.run_date}")
    available = (ctx.run_date - first).days
    capped = windows.lookback_days(ctx.config)
    source = f"{path} holds {available} (from {first})"
    if capped is not None and capped < available:
        available, source = capped, f"history.days allows {capped}"
    if available < needed:
        raise ConfigError(
            f"propensity needs {needed} days of order history before {ctx.run_date} (the "
            f"oldest training snapshot, {oldest} days back, plus horizon_days {cfg.horizon_days})"
            f"; {source}: lower propensity.train_as_of_offsets_days, validation_offset_days "
            "and horizon_days, or give more history"
        )
    if last < r.validation_date:
        raise ConfigError(
            f"propensity: the order history ends on {last}, before the validation snapshot "
            f"{r.validation_date} ({cfg.validation_offset_days} days before the run date), so "
            "its labels would all be empty: use a run date shortly after the data ends"
        )


def _run(r: Run) -> None:
    ctx, cfg = r.ctx, r.cfg
    spark, config, as_of = ctx.spark, ctx.config, ctx.run_date
    plan = registry.plan(spark, config, MODEL, as_of, cfg.retrain_every_days)
    log.info("propensity: %s: %s", "refit" if plan.refit else "no refit", plan.why)
    if not plan.refit and plan.champion is not None:
        serve(r, plan, plan.champion)
        return
    check_history(r)
    with step(log, "propensity feature snapshots") as s:
        built = ensure_snapshots(ctx, [*r.train_dates, r.validation_date, r.calibration_date,
                                       as_of])  # fmt: skip
        s.rows(built=len(built))
    inputs = read_inputs(spark, config)
    cfg = model.resolved(cfg, inputs.features.columns)
    model.check_features(inputs.features.columns, cfg)

    with step(log, "propensity training set") as s:
        frames = [inputs.labelled(d, cfg) for d in r.train_dates]
        training = frames[0]
        for frame in frames[1:]:
            training = training.unionByName(frame)
        if cfg.class_weights:
            training = transforms.with_class_weights(training)
        training = r.keep(training)
        r.features = availability.check(
            model.with_derived(training, cfg),
            model.numeric_expressions(cfg),
            cfg.categorical_features,
            model="propensity",
            rows_name=f"the training snapshots {', '.join(d.isoformat() for d in r.train_dates)}",
        )
        cfg = model.for_fit(cfg, r.features)
        counts = training.groupBy(LABEL).count().collect()  # two rows: one per class
        by_class = {int(row[0]): int(row[1]) for row in counts}
        if len(by_class) < 2:
            raise RuntimeError(
                f"propensity: training snapshots {r.train_dates} hold only label "
                f"{sorted(by_class)}: need buyers and non-buyers"
            )
        s.rows(rows=sum(by_class.values()), buyers=by_class[1])
    with step(log, "propensity fit") as s:
        prep = model.preparation(cfg).fit(training)
        prepared = r.keep(prep.transform(training))
        tuned = model.tune(prepared, cfg)
        names = model.slot_names(prepared, cfg)
        log.info("propensity logistic %s (grid: %s)", tuned.best, tuned.grid)
        fitted_candidates = candidates(prep, prepared, tuned, cfg)
        s.rows(grid_points=len(tuned.grid), features=len(names), models=len(fitted_candidates))
    with step(log, "propensity validation") as s:
        labelled_validation = r.keep(inputs.labelled(r.validation_date, cfg))
        contenders = challenge(fitted_candidates, labelled_validation, cfg)
        propensity_model = contenders[0].model
        log.info(
            "propensity on the validation snapshot: %s; serving %s",
            ", ".join(f"{c.name} {tuning_key(cfg)} {c.metrics[tuning_key(cfg)]:.4f}"
                      for c in contenders),
            contenders[0].name,
        )  # fmt: skip
        validation = r.keep(
            model.with_margin(propensity_model.transform(labelled_validation)).withColumn(
                RECENCY_SCORE, recency_score(cfg.days_cap)
            )
        )
        evaluated = [
            evaluate_model(r, validation, MODEL, model.MARGIN),
            evaluate_model(r, validation, BASELINE, RECENCY_SCORE),
        ]
        s.rows(customers=int(evaluated[0].metrics["customers"]))
    extra: dict[str, dict[str, float]] = {
        c.name: {**c.metrics, "chosen": float(c is contenders[0])} for c in contenders
    }
    with step(log, "propensity calibration") as s:
        latest = validation if r.calibration_date == r.validation_date else None
        calibration, extra[CALIBRATION] = calibrate(r, inputs, propensity_model, latest, True)
        assert calibration is not None
        s.rows(customers=int(extra[CALIBRATION]["customers"]))
    spend = churn = None
    if cfg.spend_model:
        with step(log, "propensity spend model") as s:
            buyers = prepared.where((F.col(LABEL) > 0) & (F.col(SPEND_NEXT) > 0))
            spend = model.spend_model(cfg, SPEND_NEXT).fit(buyers)
            judged = spend.transform(validation.where(F.col(SPEND_NEXT) > 0))
            extra[SPEND] = evaluate.regression_metrics(judged, "predicted_spend", SPEND_NEXT)
            extra[SPEND_BASELINE] = evaluate.regression_metrics(judged, SPEND_PREVIOUS, SPEND_NEXT)
            s.rows(buyers_judged=int(extra[SPEND]["customers"]))
    if cfg.churn_model:
        with step(log, "propensity churn model") as s:
            active = prepared.where(F.col(RECENTLY_ACTIVE))
            churn = model.churn_model(cfg, CHURN_LABEL, tuned.best).fit(active)
            judged = with_churn_risk(churn.transform(validation.where(F.col(RECENTLY_ACTIVE))))
            extra[CHURN] = {
                **evaluate.ranking_metrics(judged, "churn_risk", CHURN_LABEL),
                **evaluate.probability_metrics(judged, "churn_risk", CHURN_LABEL),
            }
            s.rows(active_judged=int(extra[CHURN]["customers"]))
    fitted = Fitted(
        propensity_model,
        calibration,
        spend,
        churn,
        tuned,
        model.coefficients(tuned.model, names),
        contenders,
    )
    settled = settle(r, plan, labelled_validation, inputs, evaluated[0])
    champion = registry.serving(plan, settled)
    scorers: Scorers = (
        fitted
        if champion.version == r.version
        else recalibrated(r, inputs, load(spark, config, champion.version))
    )
    outputs = [
        tables.table_path(config, Layer.GOLD, PROPENSITY),
        tables.table_path(config, Layer.OPS, METRICS),
        registry.path(config),
    ]
    # The challenger's files first: a registry row never names a model that is not saved.
    save_model(r, fitted, inputs, evaluated, extra)
    with tables.restored_on_failure(spark, outputs):
        write_scores(r, inputs, scorers, champion.version)
        write_metrics(r, evaluated, extra)
        registry.record(spark, config, settled)
    log.info(
        "%s; %s %s: %s",
        registry.served_line(MODEL, champion, plan, champion.version == r.version),
        r.version,
        settled[0].decision,
        settled[0].reason,
    )
    with step(log, "propensity report"):
        write_report(r, fitted, evaluated, extra, inputs)


def settle(
    r: Run,
    plan: registry.Plan,
    validation: DataFrame,
    inputs: Inputs,
    challenger: report.Evaluated,
) -> list[registry.Version]:
    """Today's fit as a challenger of the champion, both judged by validation ROC AUC on the
    same (today's) labelled validation snapshot `validation`; the registry rows that leaves."""
    cfg = r.cfg
    champion_auc, not_compared = None, ""
    old = plan.champion
    if old is not None and old.version != r.version:
        with step(log, f"propensity judge champion {old.version}"):
            try:
                scored = load(r.ctx.spark, r.ctx.config, old.version).propensity.transform(
                    validation
                )
                champion_auc = evaluate.ranking_metrics(
                    model.with_margin(scored), model.MARGIN, LABEL
                )["roc_auc"]
            except Exception as exc:  # e.g. a feature it needs is no longer in the snapshot
                log.warning("propensity: champion %s cannot score today: %s", old.version, exc)
                not_compared = f"champion {old.version} cannot score today's validation rows"
    version = registry.Version(
        model=MODEL,
        version=r.version,
        as_of_date=r.ctx.run_date,
        metric="roc_auc",
        metric_value=challenger.metrics["roc_auc"],
        train_start=min(r.train_dates),
        train_end=max(r.train_dates) + timedelta(days=cfg.horizon_days),
        validation_date=r.validation_date,
        metrics={k: float(v) for k, v in challenger.metrics.items() if math.isfinite(v)}
        | ({} if champion_auc is None else {"champion_roc_auc": champion_auc}),
        inputs=dict(inputs.versions),
    )
    return registry.settle(plan, version, champion_auc, cfg.champion_tolerance, not_compared)


def calibrate(
    r: Run,
    inputs: Inputs,
    propensity: PipelineModel,
    scored: DataFrame | None,
    one_class_too: bool = False,
) -> tuple[PipelineModel | None, dict[str, float]]:
    """A calibrator of `propensity`'s margin fitted on the latest labelled snapshot
    (`r.calibration_date`), and the figures there: customers, base rate and, when fitted, the
    mean calibrated probability (Platt's fit makes it the base rate). `scored`: that snapshot
    labelled and scored by `propensity` already (the validation rows when the dates coincide).
    No calibrator when the snapshot holds one class only, unless `one_class_too` (a fresh fit
    has no other calibration to fall back on)."""
    cfg = r.cfg
    if scored is None:
        labelled = inputs.labelled(r.calibration_date, cfg)
        scored = r.keep(model.with_margin(propensity.transform(labelled)))
    row = scored.agg(F.count(F.lit(1)).alias("n"), F.sum(LABEL).alias("pos")).first()  # one row
    assert row is not None
    n, buyers = int(row["n"]), float(row["pos"] or 0.0)
    figures = {"customers": float(n), "base_rate": buyers / n if n else math.nan}
    if (buyers == 0 or buyers == n) and not one_class_too:
        return None, figures
    fitted = model.calibrator(cfg.calibration, model.MARGIN).fit(scored)
    mean = model.calibrated(fitted, scored, model.MARGIN, PROBABILITY).agg(F.avg(PROBABILITY))
    figures["mean_predicted"] = float(mean.first()[0])  # type: ignore[index]
    log.info(
        "propensity calibration on %s (the latest snapshot whose %d-day label window has ended"
        "%s): %d customers, base rate %.4f, mean calibrated probability %.4f",
        r.calibration_date, cfg.horizon_days,
        "; the validation snapshot" if r.calibration_date == r.validation_date else "",
        n, figures["base_rate"], figures["mean_predicted"],
    )  # fmt: skip
    return fitted, figures


def recalibrated(r: Run, inputs: Inputs, scorers: Scorers) -> Scorers:
    """`scorers` with its calibration refitted on the latest labelled snapshot: a champion
    fitted days ago was calibrated on an older window's base rate."""
    calibration, figures = calibrate(r, inputs, scorers.propensity, None)
    if calibration is None:
        log.warning(
            "propensity: the calibration snapshot %s holds one class only (base rate %s): the "
            "saved calibration serves",
            r.calibration_date, figures["base_rate"],
        )  # fmt: skip
        return scorers
    return replace(scorers, calibration=calibration)


def serve(r: Run, plan: registry.Plan, champion: registry.Version) -> None:
    """Between refits: the run date scored by the champion's saved models, recalibrated on the
    latest labelled snapshot (one small fit); nothing else fitted."""
    ctx = r.ctx
    with step(log, "propensity feature snapshots") as s:
        built = ensure_snapshots(ctx, [r.calibration_date, ctx.run_date])
        s.rows(built=len(built))
    inputs = read_inputs(ctx.spark, ctx.config)
    with step(log, "propensity calibration"):
        scorers = recalibrated(r, inputs, load(ctx.spark, ctx.config, champion.version))
    path = tables.table_path(ctx.config, Layer.GOLD, PROPENSITY)
    with tables.restored_on_failure(ctx.spark, [path]):
        write_scores(r, inputs, scorers, champion.version)
    log.info("%s", registry.served_line(MODEL, champion, plan, False))


def recency_score(days_cap: int) -> Any:
    """The baseline's score: fewer days since the last order ranks higher; never = the cap."""
    days = F.least(F.coalesce(F.col("days_since_last_order"), F.lit(days_cap)), F.lit(days_cap))
    return (-days).cast("double")


def with_churn_risk(scored: DataFrame) -> DataFrame:
    return scored.withColumn("churn_risk", vector_to_array(F.col("churn_probability"))[1]).drop(
        "churn_raw", "churn_probability", "churn_prediction"
    )


def evaluate_model(r: Run, validation: DataFrame, name: str, score: str) -> report.Evaluated:
    """Ranking metrics of `score`; probability metrics, deciles and curve of its out-of-fold
    calibrated probabilities, on the validation snapshot."""
    cfg = r.cfg
    calibrated = model.cross_calibrated(
        validation.select("customer_id", score, LABEL),
        cfg.calibration,
        score,
        PROBABILITY,
        cfg.seed,
    )
    ranked = evaluate.with_rank(calibrated, [F.col(score).desc(), F.col("customer_id")], r.keep)
    metrics = {
        **evaluate.ranking_metrics(validation, score, LABEL),
        **evaluate.probability_metrics(ranked, PROBABILITY, LABEL),
    }
    deciles = evaluate.gains(evaluate.bucket_table(ranked, evaluate.DECILES, LABEL, PROBABILITY))
    metrics["ece"] = evaluate.calibration_error(deciles)
    metrics["top_decile_precision"] = deciles[0].observed_rate if deciles else float("nan")
    metrics["top_decile_lift"] = deciles[0].lift if deciles else float("nan")
    curve = evaluate.curve(evaluate.bucket_table(ranked, cfg.curve_points, LABEL, None))
    log.info("propensity %s: %s", name, {k: round(v, 4) for k, v in metrics.items()})
    return report.Evaluated(name, metrics, deciles, curve)


def scoring_frame(r: Run, inputs: Inputs) -> DataFrame:
    """The run date's snapshot (the CRM's customers and the active ones it never listed), and
    the CRM's current customers it misses (null features: the model imputes them)."""
    as_of = r.ctx.run_date
    snapshot = inputs.features.where(F.col("as_of_date") == F.lit(as_of)).drop("as_of_date")
    customers = (
        signed_up_before(inputs.customers, as_of)
        .unionByName(snapshot.select("customer_id"))
        .distinct()
    )
    joined = customers.join(snapshot, "customer_id", "left").withColumn(
        RECENTLY_ACTIVE, transforms.recently_active(r.cfg.churn_active_days)
    )
    reach = inputs.snapshot(as_of).select(transforms.HISTORY_DAYS).limit(1)
    return joined.crossJoin(F.broadcast(reach))


def write_scores(r: Run, inputs: Inputs, fitted: Scorers, version: str) -> None:
    """The run date's scores by `fitted`, tagged with its `version` (the champion's)."""
    spark, config, as_of = r.ctx.spark, r.ctx.config, r.ctx.run_date
    with step(log, f"propensity write {PROPENSITY}") as s:
        scored = model.calibrated(
            fitted.calibration,
            model.with_margin(fitted.propensity.transform(scoring_frame(r, inputs))),
            model.MARGIN,
            PROBABILITY,
        )
        if fitted.spend is not None:
            scored = fitted.spend.transform(scored).withColumn(
                "predicted_spend", F.greatest(F.col("predicted_spend"), F.lit(0.0))
            )
        else:
            scored = scored.withColumn("predicted_spend", F.lit(None).cast("double"))
        if fitted.churn is not None:
            scored = with_churn_risk(fitted.churn.transform(scored)).withColumn(
                "churn_risk", F.when(F.col(RECENTLY_ACTIVE), F.col("churn_risk"))
            )
        else:
            scored = scored.withColumn("churn_risk", F.lit(None).cast("double"))
        slim = scored.select(
            "customer_id", PROBABILITY, "predicted_spend", "churn_risk", model.MARGIN
        )
        # Ties in probability go to the higher model score, then the smaller customer id.
        ranked = evaluate.with_rank(
            slim,
            [F.col(PROBABILITY).desc(), F.col(model.MARGIN).desc(), F.col("customer_id")],
            r.keep,
        )
        out = ranked.select(
            "customer_id",
            F.lit(as_of).alias("as_of_date"),
            PROBABILITY,
            evaluate.bucket(F.col(RANK), F.col("_n"), evaluate.DECILES).alias("decile"),
            "predicted_spend",
            (F.col(PROBABILITY) * F.col("predicted_spend")).alias("expected_value"),
            "churn_risk",
            F.lit(version).alias("model_version"),
        )
        path = tables.table_path(config, Layer.GOLD, PROPENSITY)
        tables.replace_where(
            conform(out, gold.PROPENSITY), path, f"as_of_date = '{as_of}'", ["as_of_date"]
        )
        s.rows(rows=tables.last_commit(spark, path).rows("numOutputRows"))


def metric_rows(
    r: Run, evaluated: list[report.Evaluated], extra: dict[str, dict[str, float]]
) -> list[tuple[Any, ...]]:
    """Long format: one row per (model, metric) and per (model, decile metric, decile)."""
    head = (r.ctx.run_date, r.version, r.validation_date)
    rows: list[tuple[Any, ...]] = []
    for m in evaluated:
        rows += [(*head, m.name, k, None, float(v)) for k, v in sorted(m.metrics.items())]
        for d in m.deciles:
            rows += [(*head, m.name, k, d.decile, float(v))
                     for k, v in decile_metrics(d).items() if v is not None]  # fmt: skip
    for name, values in extra.items():
        rows += [(*head, name, k, None, float(v)) for k, v in sorted(values.items())]
    return rows


def decile_metrics(d: DecileRow) -> dict[str, float | None]:
    return {
        "customers": float(d.customers),
        "positives": float(d.positives),
        "mean_predicted": d.mean_predicted,
        "observed_rate": d.observed_rate,
        "lift": d.lift,
        "cumulative_gain": d.cumulative_gain,
        "cumulative_lift": d.cumulative_lift,
    }


def write_metrics(
    r: Run, evaluated: list[report.Evaluated], extra: dict[str, dict[str, float]]
) -> None:
    spark, as_of = r.ctx.spark, r.ctx.run_date
    with step(log, f"propensity write {METRICS}") as s:
        rows = metric_rows(r, evaluated, extra)
        path = tables.table_path(r.ctx.config, Layer.OPS, METRICS)
        # Bounded: models x (metrics + deciles x decile metrics) rows, built on the driver.
        df = spark.createDataFrame(rows, METRICS_SCHEMA)
        tables.replace_where(df, path, f"as_of_date = '{as_of}'")
        s.rows(rows=len(rows))


def save_model(
    r: Run,
    fitted: Fitted,
    inputs: Inputs,
    evaluated: list[report.Evaluated],
    extra: dict[str, dict[str, float]],
) -> None:
    spark, config = r.ctx.spark, r.ctx.config
    directory = models_path(config, r.version)
    with step(log, "propensity save model") as s:
        fitted.propensity.write().overwrite().save(f"{directory}/propensity")
        fitted.calibration.write().overwrite().save(f"{directory}/calibration")
        if fitted.spend is not None:
            fitted.spend.write().overwrite().save(f"{directory}/spend")
        if fitted.churn is not None:
            fitted.churn.write().overwrite().save(f"{directory}/churn")
        params = {
            "model_version": r.version,
            "as_of_date": r.ctx.run_date.isoformat(),
            "run_id": r.ctx.run_id,
            "train_as_of_dates": [d.isoformat() for d in r.train_dates],
            "validation_as_of_date": r.validation_date.isoformat(),
            "calibration_as_of_date": r.calibration_date.isoformat(),
            "model": fitted.judged[0].name,
            "chosen": fitted.tuned.best.as_dict(),
            "config": asdict(r.cfg),
            # Configured features the training rows could not carry are left out (and why).
            "features": r.features.as_dict() if r.features else None,
            "inputs": {
                name: {
                    "path": tables.table_path(config, layer, name),
                    "delta_version": inputs.versions[name],
                }
                for name, layer in INPUTS.items()
            },
        }
        metrics = {
            "validation": {m.name: m.metrics for m in evaluated},
            "candidates": {c.name: c.metrics for c in fitted.judged},
            "deciles": {m.name: [asdict(d) for d in m.deciles] for m in evaluated},
            **extra,
            "grid": [{**g.as_dict(), r.cfg.tuning_metric: g.metric} for g in fitted.tuned.grid],
            "coefficients": dict(fitted.coefficients),
            "intercept": float(fitted.tuned.model.intercept),
        }
        files.write_text(spark, f"{directory}/params.json", json.dumps(params, indent=2))
        files.write_text(spark, f"{directory}/metrics.json", json.dumps(metrics, indent=2))
        s.rows(features=len(fitted.coefficients))


def write_report(
    r: Run,
    fitted: Fitted,
    evaluated: list[report.Evaluated],
    extra: dict[str, dict[str, float]],
    inputs: Inputs,
) -> None:
    spark, config = r.ctx.spark, r.ctx.config
    out = tables.reports_path(config, "propensity", r.ctx.run_id)
    facts = {
        "model version": r.version,
        "as of (scored)": r.ctx.run_date.isoformat(),
        "training as_of dates": ", ".join(d.isoformat() for d in r.train_dates),
        "validation as_of date": r.validation_date.isoformat(),
        "horizon (days)": str(r.cfg.horizon_days),
        "model (validation ranking metrics)": "; ".join(
            f"{c.name}{' (serves)' if c is fitted.judged[0] else ''}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in sorted(c.metrics.items()))
            for c in fitted.judged
        ),
        "logistic regularization": str(fitted.tuned.best.as_dict()),
        "calibration": f"{r.cfg.calibration} on the {r.calibration_date.isoformat()} snapshot",
        "features used": ", ".join(
            [*r.features.used, *r.features.used_categorical] if r.features else []
        ),
        "features left out": r.features.dropped_text() if r.features else "none",
        "input Delta versions": ", ".join(f"{k} {v}" for k, v in inputs.versions.items()),
        "run id": r.ctx.run_id,
    }
    grid = [{**g.as_dict(), r.cfg.tuning_metric: g.metric} for g in fitted.tuned.grid]
    page = report.render(
        f"Purchase propensity as of {r.ctx.run_date.isoformat()}",
        facts, evaluated, extra, grid, fitted.coefficients,
    )  # fmt: skip
    log.info("propensity report: %s", reports.write(spark, out, page))

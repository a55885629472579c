"""segment: gold/user_features (as_of snapshot) -> KMeans segments, profiles, migrations, report.

Model version = the as_of date and a digest of the settings (models.version), so a rerun for the
same date and settings rebuilds the same version and replaces its rows. Segment ids are carried
over from the latest earlier version by matching centroids (see model.match_clusters); the model
and its metadata go to models/segments/<version>/.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import KMeansModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import models, registry, reports
from precision_marketing.config import Config, SegmentConfig
from precision_marketing.features import availability
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, Persisted, step
from precision_marketing.schemas import gold
from precision_marketing.schemas.project import conform
from precision_marketing.segment import model, naming, profiles, report

log = logging.getLogger(__name__)

MODEL = "segment"  # its name in ops/model_versions
FEATURES = "user_features"
SEGMENTS = "segments"
PROFILES = "segment_profiles"
MIGRATIONS = "segment_migrations"


def model_version(params: SegmentConfig, as_of: date) -> str:
    return models.version("km", as_of, params)


def model_dir(config: Config, version: str) -> str:
    return models.path(config, "segments", version)


def read_metadata(spark: SparkSession, config: Config, version: str) -> dict[str, Any]:
    text = spark.sparkContext.wholeTextFiles(f"{model_dir(config, version)}/metadata.json")
    return dict(json.loads(text.first()[1]))


def load(spark: SparkSession, config: Config, version: str) -> model.Fitted:
    """A saved version's pipeline (preparation + KMeans) as the fit returned it."""
    pipeline = PipelineModel.load(f"{model_dir(config, version)}/pipeline")
    kmeans = pipeline.stages[-1]
    assert isinstance(kmeans, KMeansModel)
    return model.Fitted(pipeline, PipelineModel(stages=pipeline.stages[:-1]), kmeans)


def previous_model(spark: SparkSession, config: Config, as_of: date) -> dict[str, Any] | None:
    """metadata.json of the latest model trained for an earlier as_of date (one small file
    per version, so reading them on the driver is bounded by the number of retrains)."""
    found = {}
    for f in files.list_files(spark, models.path(config, "segments")):
        if f.path.endswith("/metadata.json"):
            fitted_for = models.as_of_of(f.path.rsplit("/", 2)[-2])
            if fitted_for is not None and fitted_for < as_of:
                # Of several fits for one day (changed settings), the last written.
                found[(fitted_for, f.modified_ms)] = f.path
    if not found:
        return None
    text = spark.sparkContext.wholeTextFiles(found[max(found)]).first()[1]
    return dict(json.loads(text))


def _previous(meta: dict[str, Any] | None, features: list[str]) -> model.Previous | None:
    if meta is None:
        return None
    if meta["params"]["model_features"] != features:
        log.warning("model features changed since %s: ids start afresh", meta["model_version"])
        return None
    ordered = sorted(meta["segments"], key=lambda s: s["cluster"])
    return model.Previous(
        meta["model_version"],
        features,
        np.array([s["center"] for s in ordered]),
        [s["segment_id"] for s in ordered],
        [s["name"] for s in ordered],
    )


def _ensure_checkpoint_dir(spark: SparkSession, config: Config) -> None:
    """Iterated ML fits keep lineage short through checkpoints; kept inside the warehouse."""
    if not spark.sparkContext.getCheckpointDir():
        spark.sparkContext.setCheckpointDir(f"{tables.warehouse(config)}/_checkpoints")


def run(ctx: JobContext) -> None:
    require(ctx, "segment")
    spark, config, as_of = ctx.spark, ctx.config, ctx.run_date
    params: SegmentConfig = config.segment
    version = model_version(params, as_of)
    features_path = tables.table_path(config, Layer.GOLD, FEATURES)
    _ensure_checkpoint_dir(spark, config)
    persisted = Persisted()
    keep = persisted.keep

    feature_version = tables.version(spark, features_path)
    if feature_version is None:
        raise RuntimeError(f"no {features_path}: run the features job first")
    snapshot = tables.read(spark, features_path, feature_version).where(
        F.col("as_of_date") == F.lit(as_of)
    )
    plan = registry.plan(spark, config, MODEL, as_of, params.retrain_every_days)
    log.info("segment: %s: %s", "refit" if plan.refit else "no refit", plan.why)
    if not plan.refit and plan.champion is not None:
        with persisted:
            serve(ctx, plan, plan.champion, snapshot, keep)
        return
    configured = model.resolved(params, snapshot.columns)
    model.check_features(snapshot.columns, configured)
    with step(log, "segment check features") as s:
        checked = availability.check(
            snapshot,
            model.prepared_expressions(configured),
            model="segment",
            rows_name=f"{features_path} as_of_date={as_of}",
        )
        s.rows(used=len(checked.used), dropped=len(checked.dropped))
    params = model.for_fit(configured, checked)
    profile_features = params.profile_features or params.model_features
    try:
        with step(log, "segment prepare") as s:
            prep = model.preparation(params).fit(snapshot)
            prepared = keep(prep.transform(snapshot))
            n = prepared.count()
            if n == 0:
                raise RuntimeError(f"{features_path} has no rows for as_of_date={as_of}")
            s.rows(customers=n, feature_table_version=feature_version)
        with step(log, "segment choose k") as s:
            sample = prepared
            if n > params.selection_sample:
                sample = keep(
                    prepared.sample(fraction=params.selection_sample / n, seed=params.seed)
                )
            k, scores, fits = model.select_k(sample, params, n)
            s.rows(k=k, **{f"k{key}": round(v * 1000) for key, v in scores.items()})
            log.info("silhouette by k: %s", {key: round(v, 4) for key, v in scores.items()})
        with step(log, "segment fit") as s:
            reuse = fits.get(k) if sample is prepared else None
            fitted = model.fit_kmeans(prep, prepared, k, params, reuse)
            predictions = keep(
                fitted.kmeans.transform(prepared).withColumn(
                    "distance", model.distance_to_center(fitted.centers_scaled())
                )
            )
            chosen_silhouette = scores.get(k)
            if chosen_silhouette is None:
                chosen_silhouette = model.silhouette(predictions)
            cluster_profiles = profiles.cluster_profiles(
                predictions, profile_features, params.model_features
            )
            s.rows(k=k, silhouette_x1000=round(chosen_silhouette * 1000))
        previous_meta = previous_model(spark, config, as_of)
        previous = _previous(previous_meta, params.model_features)
        segments = _identify(fitted, cluster_profiles, previous, params)
        with tables.restored_on_failure(
            spark,
            [tables.table_path(config, Layer.GOLD, t) for t in (SEGMENTS, PROFILES, MIGRATIONS)],
        ):
            assigned = _write_outputs(ctx, predictions, segments, version, previous_meta)
            _save_model(
                ctx, params, checked, fitted, segments, version, k, scores, chosen_silhouette,
                feature_version, previous,
            )  # fmt: skip
            record(ctx, plan, version, k, chosen_silhouette, fitted, feature_version)
        with step(log, "segment report") as s:
            path = _report(
                ctx, params, checked, assigned, segments, scores, k, version, feature_version
            )
            s.rows(segments=len(segments))
            log.info("segment report: %s", path)
    finally:
        persisted.release()


def record(
    ctx: JobContext,
    plan: registry.Plan,
    version: str,
    k: int,
    silhouette: float,
    fitted: model.Fitted,
    feature_version: int,
) -> None:
    """The refit's registry row. Segments always take the refit: silhouette picks k on today's
    snapshot, and ids and names carry over by centroid matching, so an older model has no
    better claim on today's customers (its silhouette is not compared)."""
    fit = registry.Version(
        model=MODEL,
        version=version,
        as_of_date=ctx.run_date,
        metric="silhouette",
        metric_value=silhouette,
        train_end=ctx.run_date,
        metrics={
            "silhouette": silhouette,
            "k": float(k),
            "training_cost": float(fitted.kmeans.summary.trainingCost),
        },
        inputs={FEATURES: feature_version},
    )
    settled = registry.settle(plan, fit, None, 0.0)
    registry.record(ctx.spark, ctx.config, settled)
    log.info(
        "%s; %s: %s",
        registry.served_line(MODEL, registry.serving(plan, settled), plan, True),
        settled[0].decision,
        settled[0].reason,
    )


def serve(
    ctx: JobContext,
    plan: registry.Plan,
    champion: registry.Version,
    snapshot: DataFrame,
    keep: Any,
) -> None:
    """Between refits: the run date's customers assigned by the champion's saved pipeline,
    with its segment ids and names (profiles and descriptions from today's members); no
    model is saved and no report written."""
    spark, config = ctx.spark, ctx.config
    meta = read_metadata(spark, config, champion.version)
    fitted = load(spark, config, champion.version)
    features = list(meta["params"]["model_features"])
    params = replace(config.segment, model_features=features)
    with step(log, f"segment assign with {champion.version}") as s:
        predictions = keep(
            fitted.pipeline.transform(snapshot).withColumn(
                "distance", model.distance_to_center(fitted.centers_scaled())
            )
        )
        cluster_profiles = profiles.cluster_profiles(
            predictions, params.profile_features or features, features
        )
        s.rows(customers=sum(p.size for p in cluster_profiles))
    segments = _identify(fitted, cluster_profiles, _previous(meta, features), params)
    with tables.restored_on_failure(
        spark,
        [tables.table_path(config, Layer.GOLD, t) for t in (SEGMENTS, PROFILES, MIGRATIONS)],
    ):
        _write_outputs(
            ctx,
            predictions,
            segments,
            champion.version,
            previous_model(spark, config, ctx.run_date),
        )
    log.info("%s", registry.served_line(MODEL, champion, plan, False))


def _identify(
    fitted: model.Fitted,
    cluster_profiles: list[naming.Profile],
    previous: model.Previous | None,
    params: SegmentConfig,
) -> list[report.Segment]:
    """Segment id, name and description per cluster index (ids and names kept from `previous`)."""
    matched = model.match_clusters(fitted.centers_prepared(), fitted.scaler.std.toArray(), previous)
    ids = model.assign_ids([p.size for p in cluster_profiles], matched, previous)
    names, kept = [], []
    for p in cluster_profiles:
        old = matched.get(p.cluster)
        names.append(previous.names[old] if previous and old is not None else naming.rule_name(p.z))
        kept.append(old is not None)
    names = naming.unique_names(names, kept)
    result = []
    for p, segment_id, name in zip(cluster_profiles, ids, names, strict=True):
        top = naming.distinguishing(p.z, params.distinguishing_features)
        result.append(report.Segment(segment_id, name, naming.describe(p, top), p, top))
    if previous:
        log.info("segment ids matched to %s: %s", previous.version, {s.id: s.name for s in result})
    return result


def _write_outputs(
    ctx: JobContext,
    predictions: DataFrame,
    segments: list[report.Segment],
    version: str,
    previous: dict[str, Any] | None,
) -> DataFrame:
    spark, config, as_of = ctx.spark, ctx.config, ctx.run_date
    where = f"as_of_date = '{as_of.isoformat()}'"
    by_cluster = F.create_map(
        *(x for s in segments for x in (F.lit(s.profile.cluster), F.lit(s.id)))
    )
    names = F.create_map(*(x for s in segments for x in (F.lit(s.id), F.lit(s.name))))
    assigned = predictions.withColumn("segment_id", by_cluster[F.col(model.CLUSTER)])
    with step(log, f"segment write {SEGMENTS}") as s:
        rows = assigned.select(
            "customer_id",
            F.col("segment_id").cast("int"),
            names[F.col("segment_id")].alias("segment_name"),
            "distance",
            F.lit(version).alias("model_version"),
            F.lit(as_of).alias("as_of_date"),
        )
        path = tables.table_path(config, Layer.GOLD, SEGMENTS)
        tables.replace_where(conform(rows, gold.SEGMENTS), path, where, partition_by=["as_of_date"])
        s.rows(rows=tables.last_commit(spark, path).rows("numOutputRows"))
    with step(log, f"segment write {PROFILES}") as s:
        profile_rows = [
            (
                as_of,
                version,
                seg.id,
                seg.name,
                seg.description,
                seg.profile.size,
                seg.profile.share,
                seg.profile.means,
                seg.profile.medians,
                [(f, float(z)) for f, z in seg.top],
            )
            for seg in segments
        ]
        path = tables.table_path(config, Layer.GOLD, PROFILES)
        tables.replace_where(
            spark.createDataFrame(profile_rows, gold.SEGMENT_PROFILES), path, where
        )
        s.rows(rows=len(profile_rows))
    with step(log, f"segment write {MIGRATIONS}") as s:
        segments_path = tables.table_path(config, Layer.GOLD, SEGMENTS)
        if previous is None:
            s.rows(rows=0)
        else:
            previous_as_of = date.fromisoformat(previous["as_of_date"])
            before = tables.read(spark, segments_path).where(
                F.col("as_of_date") == F.lit(previous_as_of)
            )
            after = tables.read(spark, segments_path).where(F.col("as_of_date") == F.lit(as_of))
            moves = profiles.migrations(before, after).select(
                F.lit(as_of).alias("as_of_date"),
                F.lit(version).alias("model_version"),
                F.lit(previous_as_of).alias("previous_as_of_date"),
                F.lit(previous["model_version"]).alias("previous_model_version"),
                F.col("from_segment_id").cast("int"),
                F.col("to_segment_id").cast("int"),
                F.col("customers").cast("long"),
            )
            path = tables.table_path(config, Layer.GOLD, MIGRATIONS)
            tables.replace_where(conform(moves, gold.SEGMENT_MIGRATIONS), path, where)
            s.rows(rows=tables.last_commit(spark, path).rows("numOutputRows"))
    return assigned


def _save_model(
    ctx: JobContext,
    params: SegmentConfig,
    checked: availability.FeatureCheck,
    fitted: model.Fitted,
    segments: list[report.Segment],
    version: str,
    k: int,
    scores: dict[int, float],
    chosen_silhouette: float,
    feature_version: int,
    previous: model.Previous | None,
) -> None:
    spark, config = ctx.spark, ctx.config
    directory = model_dir(config, version)
    by_cluster = sorted(segments, key=lambda s: s.profile.cluster)
    centers = fitted.centers_prepared()
    with step(log, "segment save model") as s:
        fitted.pipeline.write().overwrite().save(f"{directory}/pipeline")
        metadata: dict[str, Any] = {
            "model_version": version,
            "as_of_date": ctx.run_date.isoformat(),
            "run_id": ctx.run_id,
            "params": {
                "k": k,
                "k_fixed": params.k,
                "k_range": [params.k_min, params.k_max],
                "seed": params.seed,
                "max_iter": params.max_iter,
                "model_features": params.model_features,
                "log_features": params.log_features,
                "days_cap": params.days_cap,
            },
            # What the snapshot could carry: configured features left out and why.
            "features": {
                "configured": ctx.config.segment.model_features,
                **checked.as_dict(),
            },
            "metrics": {
                "silhouette": chosen_silhouette,
                "silhouette_by_k": {str(key): v for key, v in scores.items()},
                "training_cost": fitted.kmeans.summary.trainingCost,
                "sizes": {str(seg.id): seg.profile.size for seg in segments},
            },
            "feature_table": {
                "path": tables.table_path(config, Layer.GOLD, FEATURES),
                "delta_version": feature_version,
            },
            "previous_model_version": previous.version if previous else None,
            # Centroids in the prepared feature space: what the next retrain matches against.
            "segments": [
                {
                    "cluster": seg.profile.cluster,
                    "segment_id": seg.id,
                    "name": seg.name,
                    "center": [float(v) for v in centers[seg.profile.cluster]],
                }
                for seg in by_cluster
            ],
        }
        files.write_text(spark, f"{directory}/metadata.json", json.dumps(metadata, indent=2))
        s.rows(k=k)


def _report(
    ctx: JobContext,
    params: SegmentConfig,
    checked: availability.FeatureCheck,
    assigned: DataFrame,
    segments: list[report.Segment],
    scores: dict[int, float],
    k: int,
    version: str,
    feature_version: int,
) -> str:
    ordered = sorted(segments, key=lambda s: s.id)
    projection = report.pca_sample(assigned, params.pca_sample, params.seed)
    page = report.page(
        f"Customer segments as of {ctx.run_date.isoformat()}",
        ordered,
        params.model_features,
        params.profile_features or params.model_features,
        projection,
        scores,
        k,
        {
            "model version": version,
            "customers": f"{sum(s.profile.size for s in segments):,}",
            "k": str(k),
            "features used": ", ".join(checked.used),
            "features left out": checked.dropped_text(),
            "feature table Delta version": str(feature_version),
            "run id": ctx.run_id,
        },
    )
    folder = tables.reports_path(ctx.config, "segment", ctx.run_date.isoformat())
    return reports.write(ctx.spark, folder, page)

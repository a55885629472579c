"""recommend: silver -> implicit ALS tuned on a time split -> gold recommendations, similar items
and bought-together rules; the model and id maps under models/recommend/<version>/; a report.

Only data strictly before the run date is used. Every gold write replaces the run date's snapshot
(`as_of_date`), and the model version is derived from the run date and the recommend config, so
rerunning a day rewrites the same rows under the same version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from itertools import product
from typing import Any

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from precision_marketing import definitions, models, registry, reports, windows
from precision_marketing.config import Config, RecommendConfig
from precision_marketing.io import files, tables
from precision_marketing.io.tables import Layer
from precision_marketing.recommend import (
    als,
    baselines,
    blend,
    cooccur,
    evaluate,
    ids,
    report,
    rules,
    serve,
    similar,
    topk,
)
from precision_marketing.recommend.evaluate import Metric
from precision_marketing.recommend.interactions import (
    InteractionParams,
    bought_lines,
    excluded_pairs,
    interactions,
    signals,
)
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, step
from precision_marketing.schemas import gold
from precision_marketing.schemas.ops import RECOMMEND_METRICS as METRICS_SCHEMA
from precision_marketing.schemas.project import conform

log = logging.getLogger(__name__)

MODEL = "recommend"  # its name in ops/model_versions
SIMILARITY = "cooccurrence"  # a version's item similarities, beside its ALS factors
CUSTOMER_IDS = "recommend_customer_ids"
ITEM_IDS = "recommend_item_ids"
RECOMMENDATIONS = "recommendations"
SIMILAR_ITEMS = "similar_items"
RULES = "rules"
METRICS = "recommend_metrics"
# Candidates beyond those needed, so ties at the cut-off are ordered by item id, not the heap.
TIE_ROOM = 5
RUN_FACTS = "run"  # ops/recommend_metrics rows of the run's figures, not of a model


def id_map_schema(key: str, idx: str) -> StructType:
    return StructType(
        [StructField(key, StringType(), False), StructField(idx, IntegerType(), False)]
    )


def model_version(cfg: RecommendConfig, as_of: date) -> str:
    return models.version("als", as_of, cfg)


def models_path(config: Config, *parts: str) -> str:
    return models.path(config, "recommend", *parts)


@dataclass(frozen=True)
class Inputs:
    events: DataFrame
    order_lines: DataFrame
    items: DataFrame
    customers: DataFrame
    segments: DataFrame | None  # gold/segments, when the segment stage has run


def read_inputs(spark: SparkSession, config: Config) -> Inputs:
    def silver(name: str) -> DataFrame:
        return tables.read(spark, tables.table_path(config, Layer.SILVER, name))

    segments_path = tables.table_path(config, Layer.GOLD, "segments")
    segments = tables.read(spark, segments_path) if tables.is_delta(spark, segments_path) else None
    return Inputs(
        silver("events"), silver("order_lines"), silver("items"), silver("customers"), segments
    )


def interaction_params(config: Config, lookback_days: int | None = None) -> InteractionParams:
    """Training reads recommend.lookback_days, else history.days; a caller's own window (the
    validation days, recent popularity) wins."""
    cfg = config.recommend
    days = lookback_days or windows.lookback_days(config, cfg.lookback_days)
    return InteractionParams(cfg.event_weights, cfg.half_life_days, cfg.max_confidence, days)


def assign_ids(spark: SparkSession, path: str, keys: DataFrame, key: str, idx: str) -> DataFrame:
    """Gives new keys the next integers and returns the whole map.

    Append-only: the anti-join against the map leaves only unseen keys, so a rerun appends
    nothing and existing ids never change (a plain append: MERGE costs several Spark jobs).
    """
    existing = tables.read_or_empty(spark, path, id_map_schema(key, idx))
    tables.append(ids.new_ids(keys, existing, key, idx), path)
    return tables.read(spark, path)


def to_idx(df: DataFrame, customer_ids: DataFrame, item_ids: DataFrame) -> DataFrame:
    with_customer = ids.with_idx(df, customer_ids, "customer_id", "customer_idx")
    return ids.with_idx(with_customer, item_ids, "item_id", "item_idx")


@dataclass
class Run:
    """What the steps of one run share."""

    ctx: JobContext
    cfg: RecommendConfig
    inputs: Inputs
    version: str
    scratch: str
    customer_ids: DataFrame
    item_ids: DataFrame
    active_items: DataFrame  # item_idx, item_id of active catalog items
    current: DataFrame  # interactions as of the run date, with integer ids
    # excluded_pairs as of the run date: customer_id, item_id, since, item_idx, customer_idx
    # (null for customers without interactions in the window)
    excluded: DataFrame
    keep: Callable[[DataFrame], DataFrame]  # persists a frame for the run
    # Figures of the run for ops/recommend_metrics (model "run") and params.json.
    facts: dict[str, float | None] = field(default_factory=dict)

    def to_idx(self, df: DataFrame) -> DataFrame:
        return to_idx(df, self.customer_ids, self.item_ids)

    def interactions(self, as_of: date, lookback_days: int | None = None) -> DataFrame:
        params = interaction_params(self.ctx.config, lookback_days)
        raw = interactions(self.inputs.events, self.inputs.order_lines, params, as_of)
        return self.to_idx(raw)

    def segments_at(self, day: date, use: str) -> DataFrame | None:
        """The newest segment snapshot dated on or before `day`; None (popular only, noted)
        when there is none: a later snapshot would carry what happened after `day`."""
        if self.inputs.segments is None:
            return None
        at = self.inputs.segments.where(F.col("as_of_date") <= F.lit(day))
        if at.limit(1).count() == 0:
            log.warning(
                "recommend %s: no gold/segments snapshot on or before %s: popular only", use, day
            )
            return None
        return baselines.latest_segments(self.inputs.segments, day)


def run(ctx: JobContext) -> None:
    require(ctx, "recommend")
    spark, config, cfg = ctx.spark, ctx.config, ctx.config.recommend
    version = model_version(cfg, ctx.run_date)
    scratch = f"{tables.warehouse(config)}/_tmp/recommend/{ctx.run_id}"
    # Lets ALS's checkpointInterval cut the lineage of its iterations.
    spark.sparkContext.setCheckpointDir(f"{scratch}/checkpoints")
    log.info("recommend as_of=%s model_version=%s", ctx.run_date, version)
    cached: list[DataFrame] = []
    try:
        _run(ctx, cfg, version, scratch, cached)
    finally:
        # Unpersisted even on failure: a cached Delta read would be served, stale, to the
        # next run in the same session (the pipeline and the tests share one).
        for df in cached:
            df.unpersist()
        files.delete(spark, scratch)


def prepare(
    ctx: JobContext, version: str, scratch: str, keep: Callable[[DataFrame], DataFrame]
) -> Run:
    """What every later step shares: interactions in the history window (and what it left
    out), id maps, active items and the excluded pairs; `keep` persists for the run."""
    spark, config, cfg, as_of = ctx.spark, ctx.config, ctx.config.recommend, ctx.run_date
    inputs = read_inputs(spark, config)
    params = interaction_params(config)
    with step(log, "recommend interactions") as s:
        raw = interactions(inputs.events, inputs.order_lines, params, as_of)
        raw = keep(raw)
        s.rows(interactions=raw.count())
    start = windows.window_start(config, as_of, cfg.lookback_days)
    everything = replace(params, lookback_days=None)
    left = windows.left_out(
        signals(inputs.events, inputs.order_lines, everything, as_of), "ts", start
    )
    windows.log_left_out("recommend", "signals", start, as_of, left)
    with step(log, "recommend id maps") as s:
        customer_ids = assign_ids(
            spark,
            tables.table_path(config, Layer.GOLD, CUSTOMER_IDS),
            raw.select("customer_id"),
            "customer_id",
            "customer_idx",
        )
        item_ids = assign_ids(
            spark,
            tables.table_path(config, Layer.GOLD, ITEM_IDS),
            raw.select("item_id").unionByName(inputs.items.select("item_id")),
            "item_id",
            "item_idx",
        )
        customer_ids, item_ids = keep(customer_ids), keep(item_ids)
        s.rows(customers=customer_ids.count(), items=item_ids.count())
    active_items = keep(
        ids.with_idx(
            inputs.items.where(F.coalesce(F.col("active"), F.lit(False))).select("item_id"),
            item_ids,
            "item_id",
            "item_idx",
        )
    )
    train = keep(to_idx(raw, customer_ids, item_ids))
    excluded = keep(
        ids.with_idx(
            excluded_pairs(inputs.events, inputs.order_lines, cfg.exclude, as_of),
            item_ids,
            "item_id",
            "item_idx",
        ).join(customer_ids, "customer_id", "left")
    )
    r = Run(
        ctx,
        cfg,
        inputs,
        version,
        scratch,
        customer_ids,
        item_ids,
        active_items,
        train,
        excluded,
        keep,
    )
    r.facts.update(history_facts("history", params.lookback_days, left))
    count_rules_window(r)
    return r


def _run(
    ctx: JobContext, cfg: RecommendConfig, version: str, scratch: str, cached: list[DataFrame]
) -> None:
    spark, config = ctx.spark, ctx.config

    def keep(df: DataFrame) -> DataFrame:
        cached.append(df.persist())
        return df

    plan = registry.plan(spark, config, MODEL, ctx.run_date, cfg.retrain_every_days)
    log.info("recommend: %s: %s", "refit" if plan.refit else "no refit", plan.why)
    if not plan.refit and plan.champion is not None:
        serve_champion(prepare(ctx, plan.champion.version, scratch, keep), plan, plan.champion)
        return
    r = prepare(ctx, version, scratch, keep)
    train, customer_ids, item_ids = r.current, r.customer_ids, r.item_ids

    grid = [als.AlsParams(*p) for p in product(cfg.grid.rank, cfg.grid.reg_param, cfg.grid.alpha)]
    tuned = Tuned([], grid[0], None)
    if cfg.tune:
        with step(log, "recommend tune") as s:
            tuned = tune(r, grid, keep, plan.champion)
            s.rows(grid_points=len(grid), metrics=len(tuned.metrics))
        log.info("recommend chose %s", tuned.best)
    metrics, best = tuned.metrics, tuned.best

    model_dir = models_path(config, version)
    with step(log, "recommend fit") as s:
        model = als.fit(
            train, best, cfg.max_iter, cfg.seed, cfg.checkpoint_interval, cfg.num_blocks
        )
        model.write().overwrite().save(f"{model_dir}/als")
        customer_ids.write.mode("overwrite").parquet(f"{model_dir}/customer_ids")
        item_ids.write.mode("overwrite").parquet(f"{model_dir}/item_ids")
        files.write_text(spark, f"{model_dir}/params.json", json.dumps(manifest(r, best), indent=2))
        files.write_text(
            spark, f"{model_dir}/metrics.json", json.dumps(metrics_json(metrics, best), indent=2)
        )
        if tuned.weights is not None:  # the blend serves: its similarities are part of it
            save_similarity(r, model_dir)
        s.rows(training_rows=train.count())
    model = ALSModel.load(f"{model_dir}/als")  # factors read back: a short lineage downstream

    settled = registry.settle(
        plan, registry_row(r, tuned), tuned.champion, cfg.champion_tolerance, tuned.not_compared
    )
    champion = registry.serving(plan, settled)
    served, weights = r, tuned.weights
    if champion.version != version:  # the challenger lost: the champion's factors serve
        served = replace(r, version=champion.version)
        model_dir = models_path(config, champion.version)
        model, weights = ALSModel.load(f"{model_dir}/als"), saved_weights(spark, model_dir)
    outputs = [
        tables.table_path(config, layer, name)
        for layer, name in (
            (Layer.GOLD, RECOMMENDATIONS),
            (Layer.GOLD, SIMILAR_ITEMS),
            (Layer.GOLD, RULES),
            (Layer.OPS, METRICS),
        )
    ]
    with tables.restored_on_failure(spark, [*outputs, registry.path(config)]):
        write_recommendations(served, model, weights, model_dir)
        write_similar_items(served, model)
        write_rules(r)
        write_metrics(r, metrics, best)
        registry.record(spark, config, settled)
    log.info(
        "%s; %s %s: %s",
        registry.served_line(MODEL, champion, plan, champion.version == version),
        version,
        settled[0].decision,
        settled[0].reason,
    )
    with step(log, "recommend report"):
        write_report(r, metrics, best)


def serve_champion(r: Run, plan: registry.Plan, champion: registry.Version) -> None:
    """Between refits: the champion's saved factors, blend weights and item similarities serve
    the run date; each customer's co-occurrence scores, popularity and the rules come from
    today's data. Customers the champion has no factors for get the blend's other parts or
    the segment-popular / popular fallback, as in any run."""
    spark, config = r.ctx.spark, r.ctx.config
    model_dir = models_path(config, champion.version)
    model = ALSModel.load(f"{model_dir}/als")
    weights = saved_weights(spark, model_dir)
    outputs = [
        tables.table_path(config, Layer.GOLD, name)
        for name in (RECOMMENDATIONS, SIMILAR_ITEMS, RULES)
    ]
    with tables.restored_on_failure(spark, outputs):
        write_recommendations(r, model, weights, model_dir)
        write_similar_items(r, model)
        write_rules(r)
    log.info("%s", registry.served_line(MODEL, champion, plan, False))


def saved_weights(spark: SparkSession, model_dir: str) -> blend.Weights | None:
    """The blend weights a saved version chose (params.json), None when ALS served alone."""
    row = spark.read.text(f"{model_dir}/params.json", wholetext=True).first()  # one small file
    assert row is not None
    facts = json.loads(row[0]).get("run", {})
    found = [facts.get(f"blend_weight_{name}") for name in blend.COMPONENTS]
    if all(w is None for w in found):
        return None
    # A component added after the version was saved had no weight in it.
    return tuple(float(w or 0.0) for w in found)


def registry_row(r: Run, tuned: Tuned) -> registry.Version:
    """Today's fit for ops/model_versions: its ALS tuning metric at top_n on the split."""
    config, as_of = r.ctx.config, r.ctx.run_date
    start = windows.window_start(config, as_of, r.cfg.lookback_days)
    versions = {
        name: tables.version(r.ctx.spark, tables.table_path(config, Layer.SILVER, name))
        for name in ("events", "order_lines", "items", "customers")
    }
    return registry.Version(
        model=MODEL,
        version=r.version,
        as_of_date=as_of,
        metric=tuned.metric_name,
        metric_value=tuned.value,
        train_start=start,
        train_end=as_of - timedelta(days=1),
        validation_date=tuned.cutoff,
        metrics={
            f"{m.model}_{m.metric}@{m.k}": float(m.value)
            for p, m in tuned.metrics
            if (p is None or p == tuned.best) and m.k is not None and m.value == m.value
        },
        inputs={k: v for k, v in versions.items() if v is not None},
    )


def manifest(r: Run, best: als.AlsParams) -> dict[str, Any]:
    return {
        "model_version": r.version,
        "as_of_date": r.ctx.run_date.isoformat(),
        "run_id": r.ctx.run_id,
        "als": {**best.as_dict(), "max_iter": r.cfg.max_iter, "seed": r.cfg.seed},
        "config": asdict(r.cfg),
        "run": dict(r.facts),
    }


def history_facts(prefix: str, days: int | None, left: windows.LeftOut) -> dict[str, float | None]:
    """A window's figures for the metrics: its days (None: all history) and what it left out."""
    return {
        f"{prefix}_window_days": None if days is None else float(days),
        f"{prefix}_rows": None if left.rows is None else float(left.rows),
        f"{prefix}_rows_dropped": float(left.rows_dropped),
        f"{prefix}_customers_dropped": float(left.customers_dropped),
    }


def candidate_depth(r: Run, n: int) -> int:
    """N + the most excluded active items of any customer, capped by candidate_buffer, + room
    for ties: enough ALS candidates that dropping a customer's excluded items still leaves N
    (heavy users past the cap may get fallbacks; logged)."""
    cap = r.cfg.candidate_buffer
    counts = (
        r.excluded.join(r.active_items.select("item_idx"), "item_idx", "left_semi")
        .groupBy("customer_id")
        .count()
    )
    row = counts.agg(
        F.max("count").alias("most"), F.count(F.when(F.col("count") > cap, 1)).alias("over")
    ).first()  # one row
    assert row is not None
    most, over = int(row["most"] or 0), int(row["over"] or 0)
    if over:
        log.warning(
            "recommend: %d customers have more than candidate_buffer=%d excluded active items: "
            "they may get fallbacks after ALS",
            over,
            cap,
        )
    return n + min(most, cap) + TIE_ROOM


def metrics_json(
    metrics: list[tuple[als.AlsParams | None, Metric]], best: als.AlsParams
) -> list[dict[str, Any]]:
    return [
        {**asdict(m), "params": p.as_dict() if p else None, "chosen": p is None or p == best}
        for p, m in metrics
    ]


# ------------------------------------------------------------------------------------------
# Tuning on a time split, or a leave-last-out holdout when that judges too few customers


@dataclass(frozen=True)
class Split:
    """Training data before a cutoff and what is judged after it; baselines read only data
    before `baseline_day` (segments and recent popularity)."""

    name: str  # "time" or "leave_last_out"
    train: DataFrame
    truth: DataFrame  # customer_idx, relevant array<double>
    judged: DataFrame  # customer_idx, excluded array<int> (as at each customer's cutoff)
    customers: int
    baseline_day: date


def time_split(r: Run, keep: Callable[[DataFrame], DataFrame]) -> Split:
    """Everyone's cutoff is the run date less validation_days."""
    cutoff = r.ctx.run_date - timedelta(days=r.cfg.validation_days)
    train = keep(r.interactions(cutoff))
    future = r.interactions(r.ctx.run_date, r.cfg.validation_days)
    at_cutoff = r.excluded.where(
        F.col("since").cast("double") < F.lit(windows.epoch_seconds(cutoff))
    ).where(F.col("customer_idx").isNotNull())
    truth = keep(evaluate.validation_truth(train, future, at_cutoff))
    judged = truth.select("customer_idx").join(
        evaluate.seen_items(at_cutoff), "customer_idx", "left"
    )
    return Split("time", train, truth, keep(judged), truth.count(), cutoff)


def leave_last_out(r: Run, keep: Callable[[DataFrame], DataFrame]) -> Split:
    """Each customer's newest item is held out (customers with two or more items)."""
    holdout = keep(evaluate.last_item_holdout(r.current))
    train = keep(r.current.join(holdout, ["customer_idx", "item_idx"], "left_anti"))
    before = evaluate.excluded_before_holdout(
        r.excluded.where(F.col("customer_idx").isNotNull()), holdout
    )
    truth = keep(evaluate.holdout_truth(holdout, before))
    judged = truth.select("customer_idx").join(evaluate.seen_items(before), "customer_idx", "left")
    first = holdout.agg(F.min("holdout_ts")).first()  # one row
    assert first is not None
    day = first[0].date() if first[0] is not None else r.ctx.run_date
    return Split("leave_last_out", train, truth, keep(judged), truth.count(), day)


def choose_split(r: Run, keep: Callable[[DataFrame], DataFrame]) -> Split:
    """The time split when it judges at least min_validation_customers, else leave-last-out."""
    split = time_split(r, keep)
    if split.customers < r.cfg.min_validation_customers:
        log.info(
            "recommend tune: the last %d days judge %d customers (< min_validation_customers=%d)"
            ": holding out each customer's newest item instead",
            r.cfg.validation_days,
            split.customers,
            r.cfg.min_validation_customers,
        )
        split = leave_last_out(r, keep)
    log.info(
        "recommend tune: %s split judges %d customers (baselines read data before %s)",
        split.name,
        split.customers,
        split.baseline_day,
    )
    r.facts["tuning_customers_judged"] = float(split.customers)
    r.facts["tuning_leave_last_out"] = 1.0 if split.name == "leave_last_out" else 0.0
    return split


@dataclass(frozen=True)
class Tuned:
    """What tuning chose: every metric row, the ALS point and the blend weights (None: ALS
    serves alone); for the registry, the chosen ALS point's tuning metric on the split and the
    champion's on the same split (None, with why, when they cannot be compared)."""

    metrics: list[tuple[als.AlsParams | None, Metric]]
    best: als.AlsParams
    weights: blend.Weights | None
    metric_name: str | None = None
    value: float | None = None
    champion: float | None = None
    not_compared: str = "tune=false: no split to judge the champion on"
    cutoff: date | None = None


def cooccurrence_lists(
    r: Run,
    interactions: DataFrame,
    depth: int,
    customers: DataFrame | None = None,
    similarity: DataFrame | None = None,
) -> DataFrame:
    """(customer_idx, cooccurrence): co-occurrence candidates over active items, for
    `customers` only when given; the item similarities of `interactions` unless given (a
    saved version's)."""
    hist = scoring_history(r, interactions)
    if similarity is None:
        hist = r.keep(hist)  # read twice: the similarities and the scores
        similarity = item_similarity(r, hist)
    scored = hist if customers is None else hist.join(customers, "customer_idx", "left_semi")
    return cooccur.candidate_lists(scored, similarity, r.active_items.select("item_idx"), depth)


def save_similarity(r: Run, model_dir: str) -> None:
    """The item similarities of the run date's interactions, saved with the version: between
    refits the version serves them with each day's histories, as it serves its ALS factors."""
    item_similarity(r, scoring_history(r, r.current)).write.mode("overwrite").parquet(
        f"{model_dir}/{SIMILARITY}"
    )


def scoring_history(r: Run, interactions: DataFrame) -> DataFrame:
    """Each customer's strongest items, weighted as the configured similarity expects."""
    cc = r.cfg.cooccurrence
    return cooccur.history(interactions, cc.max_history, binary=cc.similarity == "ease")


def item_similarity(r: Run, hist: DataFrame) -> DataFrame:
    cc = r.cfg.cooccurrence
    ease = cooccur.EaseParams(cc.ease_l2, cc.ease_max_items)
    return cooccur.item_similarity(hist, cc.similarity, cc.min_customers, cc.neighbours, ease)


def saved_similarity(r: Run, model_dir: str) -> DataFrame | None:
    """A version's saved similarities; None for a version saved before they were kept (the
    run date's are computed then)."""
    path = f"{model_dir}/{SIMILARITY}"
    if not files.exists(r.ctx.spark, path):
        log.info("recommend: %s has no saved similarities: computed from today's data", model_dir)
        return None
    return r.ctx.spark.read.schema(cooccur.SIMILARITY).parquet(path)


def blend_pool(r: Run) -> int:
    return max(r.cfg.blend.pool, max(r.cfg.eval_k), r.cfg.top_n)


def tune(
    r: Run,
    grid: list[als.AlsParams],
    keep: Callable[[DataFrame], DataFrame],
    champion: registry.Version | None = None,
) -> Tuned:
    """Fits every grid point on the split's training data and scores it on what it holds out;
    co-occurrence, the popularity baselines and the blend are scored on the same customers,
    and so is the champion's saved ALS when it was fitted before the split's cutoff.

    `keep` persists a frame for the rest of the run (the job unpersists them, also on failure).
    """
    cfg = r.cfg
    ks = sorted(cfg.eval_k)
    k_max = ks[-1]
    depth = candidate_depth(r, k_max)
    k_tune = cfg.top_n if cfg.top_n in ks else k_max
    catalog_size = r.active_items.count()

    split = choose_split(r, keep)
    train, truth, judged = split.train, split.truth, split.judged

    def score(name: str, candidates: DataFrame) -> list[Metric]:
        ranked = serve.top_n(candidates, ["customer_idx"], k_max).persist()
        try:
            return evaluate.ranking_metrics(
                name, evaluate.ranked_lists(ranked), truth, ks
            ) + evaluate.catalog_coverage(name, ranked, catalog_size, ks)
        finally:
            ranked.unpersist()

    results: list[tuple[als.AlsParams | None, Metric]] = []
    als_lists: dict[als.AlsParams, DataFrame] = {}
    for params in grid:
        model = als.fit(
            train, params, cfg.max_iter, cfg.seed, cfg.checkpoint_interval, cfg.num_blocks
        )
        # Judged as served: only active items compete for the top k.
        recs = top_k(r, model, judged.select("customer_idx"), depth)
        candidates = judged.join(recs, "customer_idx", "left").select(
            "customer_idx", "excluded", serve.als_candidates(F.col("recommendations")).alias("als")
        )
        als_lists[params] = candidates
        results += [(params, m) for m in score(serve.ALS, candidates)]

    # Baselines: global popularity over the training data, and recent popularity in the
    # customer's segment (then global, as served) when a segment snapshot predates the split.
    every_item = r.active_items.select("item_idx")
    popular = baselines.popular(train, every_item, depth).select(
        F.col("items").alias(serve.POPULAR)
    )
    results += [(None, m) for m in score(serve.POPULAR, judged.crossJoin(F.broadcast(popular)))]
    recent = r.interactions(split.baseline_day, cfg.popular_days)
    segments = r.segments_at(split.baseline_day, "segment-popular baseline")
    if segments is not None:
        seg_top = baselines.segment_popular(recent, segments, every_item, depth)
        with_segment = (
            judged.join(r.customer_ids, "customer_idx")
            .join(segments, "customer_id", "left")
            .join(
                seg_top.select("segment_id", F.col("items").alias(serve.SEGMENT_POPULAR)),
                "segment_id",
                "left",
            )
            .crossJoin(F.broadcast(popular))
            .drop("customer_id", "segment_id")
        )
        results += [(None, m) for m in score(serve.SEGMENT_POPULAR, with_segment)]

    def tuned_value(model: str, params: als.AlsParams | None) -> float:
        return next(
            m.value
            for p, m in results
            if p == params and m.model == model and m.metric == cfg.tuning_metric and m.k == k_tune
        )

    best = max(grid, key=lambda p: (tuned_value(serve.ALS, p), -grid.index(p)))
    judged_champion, not_compared = None, ""
    if champion is None:
        not_compared = "no champion"
    elif split.name != "time" or champion.as_of_date > split.baseline_day:
        # Its factors saw the held-out days: the comparison would favour it.
        not_compared = (
            f"champion {champion.version} was fitted after the {split.name} split's cutoff "
            f"{split.baseline_day}: not comparable"
        )
    else:
        saved = f"{models_path(r.ctx.config, champion.version)}/als"
        recs = top_k(r, ALSModel.load(saved), judged.select("customer_idx"), depth)
        candidates = judged.join(recs, "customer_idx", "left").select(
            "customer_idx", "excluded", serve.als_candidates(F.col("recommendations")).alias("als")
        )
        judged_champion = next(
            m.value
            for m in score(serve.ALS, candidates)
            if m.metric == cfg.tuning_metric and m.k == k_tune
        )
    registry_figures = {
        "metric_name": f"als_{cfg.tuning_metric}@{k_tune}",
        "value": tuned_value(serve.ALS, best),
        "champion": judged_champion,
        "not_compared": not_compared,
        "cutoff": split.baseline_day,
    }
    if not cfg.blend.enabled:
        return Tuned(results, best, None, **registry_figures)  # type: ignore[arg-type]

    # Co-occurrence alone (popular fallback, as served), recent popularity alone, and the blend
    # of both with the chosen ALS point and popularity.
    with step(log, "recommend tune co-occurrence") as s:
        co = keep(cooccurrence_lists(r, train, depth, judged.select("customer_idx")))
        s.rows(customers=co.count())
    recent_top = baselines.popular(recent, every_item, depth).select(
        F.col("items").alias(blend.RECENT_POPULAR)
    )
    frame = (
        als_lists[best]
        .join(co, "customer_idx", "left")
        .join(baselines.own_history(train, every_item), "customer_idx", "left")
        .crossJoin(F.broadcast(popular))
        .crossJoin(F.broadcast(recent_top))
    )
    frame = keep(
        blend.with_features(frame, blend_pool(r)).withColumn(
            "_fallback", blend.fallback_ids(F.col(serve.POPULAR), F.col("excluded"))
        )
    )
    results += [
        (None, m)
        for m in score(
            serve.COOCCURRENCE, frame.select("customer_idx", "excluded", "cooccurrence", "popular")
        )
    ]
    results += [
        (None, m)
        for m in score(
            blend.RECENT_POPULAR,
            frame.select(
                "customer_idx", "excluded", F.col(blend.RECENT_POPULAR).alias(serve.POPULAR)
            ),
        )
    ]
    results += [
        (None, m)
        for m in score(
            blend.OWN_HISTORY,
            frame.select(
                "customer_idx", "excluded", F.col(blend.OWN_HISTORY).alias(serve.ALS), "popular"
            ),
        )
    ]
    with step(log, "recommend tune blend") as s:
        points = blend.simplex(cfg.blend.grid_step)
        judged_by_grid = min(split.customers, cfg.blend.grid_customers)
        sample = blend.grid_sample(truth, split.customers, judged_by_grid)
        values = blend.grid_values(frame, sample, points, cfg.tuning_metric, k_tune)
        weights = blend.choose(points, values)
        s.rows(grid_points=len(points), customers=judged_by_grid)
    log.info(
        "recommend blend chose %s (%s %.4f on %d customers)",
        dict(zip(blend.COMPONENTS, weights, strict=True)),
        cfg.tuning_metric,
        max(values),
        judged_by_grid,
    )
    for name, w in zip(blend.COMPONENTS, weights, strict=True):
        r.facts[f"blend_weight_{name}"] = w
    r.facts["blend_grid_points"] = float(len(points))
    served = frame.select(
        "customer_idx",
        "excluded",
        blend.blended(F.col(blend.FEATURES), weights).alias(serve.BLEND),
        "popular",
    )
    results += [(None, m) for m in score(serve.BLEND, served)]
    return Tuned(results, best, weights, **registry_figures)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Outputs


def top_k(r: Run, model: ALSModel, customers: DataFrame, k: int) -> DataFrame:
    """(customer_idx, recommendations) for `customers` (customer_idx) over the active items only:
    inactive items never take a slot of a top N. Blocked BLAS (topk.py), not MLlib's heap."""
    users = model.userFactors.join(
        customers.select(F.col("customer_idx").alias("id")), "id", "left_semi"
    )
    items = model.itemFactors.join(
        r.active_items.select(F.col("item_idx").alias("id")), "id", "left_semi"
    )
    return topk.recommend_for_users(users, items, k)


def write_recommendations(
    r: Run, model: ALSModel, weights: blend.Weights | None, model_dir: str
) -> None:
    """Top-N per active customer: the blend with the tuned weights and the similarities saved
    in `model_dir` (or ALS alone without them) over active items, then segment-popular, then
    popular."""
    spark, cfg, as_of = r.ctx.spark, r.cfg, r.ctx.run_date
    with step(log, "recommend recommendations") as s:
        depth = candidate_depth(r, cfg.top_n)
        # The CRM's customers, and the active ones it never listed (no CRM: all).
        active = definitions.active_customers(r.inputs.events, r.inputs.order_lines, as_of)
        customers = definitions.customers_at(r.inputs.customers, active, as_of).join(
            r.customer_ids, "customer_id", "left"
        )
        known = customers.where(F.col("customer_idx").isNotNull()).select("customer_idx")
        recs = top_k(r, model, known, depth).select(
            "customer_idx", serve.als_candidates(F.col("recommendations")).alias(serve.ALS)
        )
        frame = customers.join(recs, "customer_idx", "left").join(
            evaluate.seen_items(r.excluded, "customer_id"), "customer_id", "left"
        )
        popular = baselines.popular(r.current, r.active_items, depth)
        frame = frame.crossJoin(F.broadcast(popular.select(F.col("items").alias(serve.POPULAR))))
        if weights is not None:
            frame = with_blend(r, frame, depth, weights, saved_similarity(r, model_dir))
        segments = r.segments_at(as_of, "segment-popular fallback")
        if segments is not None:
            recent = r.interactions(as_of, cfg.popular_days)
            seg_top = baselines.segment_popular(recent, segments, r.active_items, depth)
            frame = frame.join(segments, "customer_id", "left").join(
                F.broadcast(
                    seg_top.select("segment_id", F.col("items").alias(serve.SEGMENT_POPULAR))
                ),
                "segment_id",
                "left",
            )
        ranked = serve.top_n(serve.with_candidate_columns(frame), ["customer_id"], cfg.top_n)
        out = ranked.join(r.item_ids, "item_idx").select(
            "customer_id",
            "rank",
            "item_id",
            "score",
            "source",
            F.lit(r.version).alias("model_version"),
            F.lit(as_of).alias("as_of_date"),
        )
        path = tables.table_path(r.ctx.config, Layer.GOLD, RECOMMENDATIONS)
        tables.replace_where(
            conform(out, gold.RECOMMENDATIONS), path, f"as_of_date = '{as_of}'", ["as_of_date"]
        )
        s.rows(rows=tables.last_commit(spark, path).rows("numOutputRows"))


def with_blend(
    r: Run,
    frame: DataFrame,
    depth: int,
    weights: blend.Weights,
    similarity: DataFrame | None,
) -> DataFrame:
    """The blended list in the model slot for customers known to ALS or co-occurrence (the
    others keep the fallbacks); the ALS list leaves the frame."""
    co = cooccurrence_lists(r, r.current, depth, similarity=similarity)
    recent = baselines.popular(
        r.interactions(r.ctx.run_date, r.cfg.popular_days), r.active_items, depth
    )
    with_lists = (
        frame.join(co, "customer_idx", "left")
        .join(baselines.own_history(r.current, r.active_items), "customer_idx", "left")
        .crossJoin(F.broadcast(recent.select(F.col("items").alias(blend.RECENT_POPULAR))))
    )
    known = F.col(serve.ALS).isNotNull() | F.col(serve.COOCCURRENCE).isNotNull()
    return (
        blend.with_features(with_lists, blend_pool(r))
        .withColumn(
            serve.BLEND,
            F.when(known, blend.blended(F.col(blend.FEATURES), weights)),
        )
        .drop(
            serve.ALS, serve.COOCCURRENCE, blend.RECENT_POPULAR, blend.OWN_HISTORY, blend.FEATURES
        )
    )


def write_similar_items(r: Run, model: ALSModel) -> None:
    """Top-M neighbours per active item: ALS cosine, or content rules for items without factors."""
    spark, cfg, as_of = r.ctx.spark, r.cfg, r.ctx.run_date
    with step(log, "recommend similar items") as s:
        active_ids = r.active_items.select(F.col("item_idx").alias("id"))
        unit = similar.unit_factors(model.itemFactors.join(active_ids, "id", "left_semi"))
        neighbours = similar.factor_neighbours(
            # M + 1: the item itself is among them (cosine 1); best_k orders equal scores by
            # item id, so the cut-off keeps the same items in every run.
            topk.recommend_for_users(unit, unit, cfg.similar_items + 1, user_col="item_idx"),
            cfg.similar_items,
        )
        names = r.item_ids
        by_factors = (
            neighbours.join(names, "item_idx")
            .join(
                names.select(
                    F.col("item_idx").alias("similar_idx"),
                    F.col("item_id").alias("similar_item_id"),
                ),
                "similar_idx",
            )
            .select(
                "item_id", "rank", "similar_item_id", "score", F.lit(similar.ALS).alias("source")
            )
        )
        catalog = r.inputs.items.where(F.coalesce(F.col("active"), F.lit(False)))
        with_factors = model.itemFactors.select(F.col("id").alias("item_idx")).join(
            names, "item_idx"
        )
        new_items = catalog.join(with_factors, "item_id", "left_anti")
        by_content = similar.content_neighbours(new_items, catalog, cfg.similar_items).select(
            "item_id", "rank", "similar_item_id", "score", F.lit(similar.CONTENT).alias("source")
        )
        out = by_factors.unionByName(by_content).select(
            "*", F.lit(r.version).alias("model_version"), F.lit(as_of).alias("as_of_date")
        )
        path = tables.table_path(r.ctx.config, Layer.GOLD, SIMILAR_ITEMS)
        tables.replace_where(
            conform(out, gold.SIMILAR_ITEMS), path, f"as_of_date = '{as_of}'", ["as_of_date"]
        )
        s.rows(rows=tables.last_commit(spark, path).rows("numOutputRows"))


def count_rules_window(r: Run) -> None:
    """Logs and records what the rules' window leaves out of the kept order lines."""
    config, as_of, own = r.ctx.config, r.ctx.run_date, r.cfg.rules.lookback_days
    start = windows.window_start(config, as_of, own)
    left = windows.left_out(bought_lines(r.inputs.order_lines, as_of, None), "order_ts", start)
    windows.log_left_out("recommend rules", "kept order lines", start, as_of, left)
    r.facts.update(history_facts("rules_history", windows.lookback_days(config, own), left))


def write_rules(r: Run) -> None:
    spark, rc, as_of = r.ctx.spark, r.cfg.rules, r.ctx.run_date
    days = windows.lookback_days(r.ctx.config, rc.lookback_days)
    with step(log, "recommend rules") as s:
        baskets = rules.baskets(r.inputs.order_lines, as_of, days).persist()
        try:
            found = rules.association_rules(
                baskets,
                rc.min_orders,
                rc.min_confidence,
                rc.min_lift,
                max_antecedent_items=rc.max_antecedent_items,
                per_antecedent=rc.per_antecedent,
            )
            out = conform(
                found.select("*", F.lit(as_of).alias("as_of_date")), gold.ASSOCIATION_RULES
            )
            path = tables.table_path(r.ctx.config, Layer.GOLD, RULES)
            tables.replace_where(out, path, f"as_of_date = '{as_of}'", partition_by=["as_of_date"])
        finally:
            baskets.unpersist()
        s.rows(rules=tables.last_commit(spark, path).rows("numOutputRows"))


def write_metrics(
    r: Run, metrics: list[tuple[als.AlsParams | None, Metric]], best: als.AlsParams
) -> None:
    """ops/recommend_metrics: every grid point and baseline, tagged with the model version."""
    spark, as_of = r.ctx.spark, r.ctx.run_date
    rows: list[tuple[Any, ...]] = [
        (
            as_of,
            r.version,
            m.model,
            p.rank if p else None,
            p.reg_param if p else None,
            p.alpha if p else None,
            p is None or p == best,
            m.k,
            m.metric,
            m.value,
        )
        for p, m in metrics
    ]
    # The run's own figures (history windows, tuning split): model "run", no k.
    rows += [
        (as_of, r.version, RUN_FACTS, None, None, None, None, None, name, value)
        for name, value in sorted(r.facts.items())
    ]
    path = tables.table_path(r.ctx.config, Layer.OPS, METRICS)
    # Bounded: grid points x models x k x metrics rows, built on the driver.
    df = spark.createDataFrame(rows, METRICS_SCHEMA)
    tables.replace_where(df, path, f"as_of_date = '{as_of}'")


def write_report(
    r: Run, metrics: list[tuple[als.AlsParams | None, Metric]], best: als.AlsParams
) -> None:
    spark, config = r.ctx.spark, r.ctx.config
    shown = [m for p, m in metrics if p is None or p == best]
    examples = example_customers(r)
    out = tables.reports_path(config, "recommend", r.ctx.run_id)
    page = report.page(
        r.version, r.ctx.run_date.isoformat(), best.as_dict(), shown, examples, r.facts
    )
    log.info("recommend report: %s", reports.write(spark, out, page))


def example_customers(r: Run) -> list[dict[str, Any]]:
    """A few customers with model (blend or ALS) lists (smallest ids: stable), titles attached.

    Bounded: `example_customers` customers x (top N + 5 history items) rows reach the driver.
    """
    spark, cfg, as_of = r.ctx.spark, r.cfg, r.ctx.run_date
    recs = tables.read(spark, tables.table_path(r.ctx.config, Layer.GOLD, RECOMMENDATIONS)).where(
        F.col("as_of_date") == F.lit(as_of)
    )
    chosen = (
        recs.where(F.col("source").isin(serve.BLEND, serve.ALS))
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .limit(cfg.example_customers)
    )
    titles = r.inputs.items.select("item_id", "title")
    # Only the `example_customers` chosen above (a handful): safe to bring to the driver.
    rec_rows = (
        recs.join(chosen, "customer_id", "left_semi")
        .join(titles, "item_id", "left")
        .orderBy("customer_id", "rank")
        .collect()
    )
    history = (
        r.current.join(chosen, "customer_id", "left_semi")
        .join(titles, "item_id", "left")
        .orderBy("customer_id", F.col("last_ts").desc())
        .select("customer_id", "title")
        .collect()
    )
    out: dict[str, dict[str, Any]] = {}
    for row in rec_rows:
        ex = out.setdefault(row["customer_id"], {"customer_id": row["customer_id"]})
        ex.setdefault("recommendations", []).append(row.asDict())
    for row in history:
        if row["customer_id"] in out:
            seen = out[row["customer_id"]].setdefault("history", [])
            if len(seen) < 5:
                seen.append(row["title"])
    return [{"history": [], **ex} for ex in out.values()]

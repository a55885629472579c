"""features: silver -> gold/user_features, one point-in-time snapshot per as_of_date (run date).

A rerun for the same as_of_date replaces that snapshot's partition and nothing else.
"""

from __future__ import annotations

import logging
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing import definitions
from precision_marketing.features import cadence, daily, interests, transforms
from precision_marketing.features import categories as feature_categories
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.requirements import require
from precision_marketing.runtime import JobContext, Persisted, step

log = logging.getLogger(__name__)

TABLE = "user_features"


def run(ctx: JobContext) -> None:
    require(ctx, "features")
    build_snapshot(ctx, ctx.run_date, keep_daily=ctx.config.features.incremental)


def build_snapshot(ctx: JobContext, as_of: date, keep_daily: bool = False) -> None:
    """Writes the gold/user_features snapshot of `as_of` from silver, replacing that partition
    only: the run date's, or a past one another stage needs (propensity's training dates).

    keep_daily: the order features are summed from gold/customer_daily, brought up to `as_of`
    by merging the days that changed (features.daily); otherwise from all order lines.
    """
    spark, config = ctx.spark, ctx.config
    params = config.features

    def silver(name: str) -> DataFrame:
        return tables.read(spark, tables.table_path(config, Layer.SILVER, name))

    items = silver("items")
    lines = silver("order_lines")
    raw_events = silver("events")
    with step(log, "features categories") as s:
        categories = feature_categories.choose(spark, config, items, lines, raw_events, as_of)
        s.rows(categories=len(categories))
    persisted = Persisted()
    keep = persisted.keep
    try:
        with step(log, "features behaviour") as s:
            events = transforms.stitch(transforms.events_before(raw_events, as_of))
            behaviour = keep(transforms.behaviour_features(events, items, as_of, categories))
            s.rows(customers=behaviour.count())
        with step(log, "features interests (LDA)") as s:
            # One row at most: whether web/app purchases reach the terms through events.
            in_events = behaviour.where(F.col("purchase_events") > 0).limit(1).count() > 0
            terms = transforms.activity_terms(behaviour, lines, items, as_of, in_events)
            docs = keep(interests.documents(terms))
            topics = interests.interest_tags(docs, params.lda)
            if topics.names:
                log.info("interest topics: %s", ", ".join(topics.names))
            s.rows(documents=topics.documents, topics=len(topics.names))
        with step(log, "features aggregate") as s:
            if keep_daily:
                days, built = daily.refresh(ctx, as_of)
                if built is not None:
                    s.rows(daily_rebuilt=int(built.mode == "rebuild"), days_merged=len(built.days))
            else:
                days = transforms.customer_daily(lines, items, as_of)
            orders = transforms.orders_from_daily(
                days, as_of, params.windows_days, categories
            ).join(cadence.cadence_features(lines, as_of), "customer_id", "left")
            active = definitions.active_customers(raw_events, lines, as_of)
            history = silver("customer_history")
            if "birth_year" not in history.columns:
                log.warning(
                    "features: silver/customer_history has no birth_year (written before silver "
                    "kept it): age_band is the band stored on silver's run date, not on %s",
                    as_of,
                )
            unscored = keep(
                transforms.assemble(
                    transforms.customer_base(history, active, as_of),
                    behaviour.drop(transforms.TOUCHED_TERMS),
                    orders,
                    topics.tags,
                    as_of,
                    params.windows_days,
                )
            )
            s.rows(customers=unscored.count())
        features = transforms.score_rfm(unscored, params.windows_days)
        path = tables.table_path(config, Layer.GOLD, TABLE)
        with step(log, f"features write {TABLE}") as s:
            tables.replace_where(
                features, path, f"as_of_date = '{as_of.isoformat()}'", partition_by=["as_of_date"]
            )
            commit = tables.last_commit(spark, path)
            s.rows(rows=commit.rows("numOutputRows"), version=commit.version)
    finally:
        persisted.release()

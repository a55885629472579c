"""generate --next-day: the files a shop delivers the day after an existing history.

Same world, same seed: the customers are the generation's (ground_truth/generation), and the
delivered day is the first one not landed yet (the generation's run date, then one more per
row of ground_truth/next_days). Its files land in folders of their own under the sources'
landing folders (`day=<yyyymmdd>`), so ingest takes them as one new batch:

- transactions: each active customer's Poisson(λ) orders of the day, drawn like simulated
  baseline orders (generate/response.py, keyed by customer and day, so the same day always
  gives the same orders); the refunds of earlier orders that fall on the day (the generator's
  own refund draws, which the history cut at its run date: corrections of earlier days); and,
  late, the store orders of the day before that a till uploaded a day late
  (LATE_STORE_ORDER_SHARE of the store orders drawn for the day are dated the day before);
- events: the customers' browse sessions of the day (app sessions buffered offline dated the
  day before: LATE_APP_SESSION_SHARE), and the checkout events of the web and app orders.

Not delivered: CRM exports and the catalog (they come at their own cadence, and no customer
signs up after the history), newsletter opens, never-logged-in visitors, and defects.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.config import Config
from precision_marketing.generate import events, response
from precision_marketing.generate import generate as gen
from precision_marketing.generate import model as m
from precision_marketing.generate.draws import Draw, approx_poisson
from precision_marketing.generate.model import DAY_MS, EPOCH, GenParams
from precision_marketing.generate.response_job import generation_params
from precision_marketing.io import files, tables
from precision_marketing.runtime import JobContext, step

log = logging.getLogger(__name__)

TRUTH_TABLE = "next_days"
TRUTH_SCHEMA = (
    "day date, run_date date, order_lines long, late_order_lines long, refunds long, "
    "events long, late_events long"
)


def landed_days(spark: SparkSession, config: Config) -> int:
    """How many days were landed after the generation's history (one truth row each)."""
    path = tables.ground_truth(config, TRUTH_TABLE)
    return tables.read(spark, path).count() if tables.is_delta(spark, path) else 0


FOLDER_GLOB = "day=*"  # every delivered day's folder
DELIVERED = ("transactions", "events")  # the sources a next day lands files for


def folder(day: date) -> str:
    return f"day={day:%Y%m%d}"


def run(ctx: JobContext) -> None:
    spark, config = ctx.spark, ctx.config
    p = generation_params(spark, config)
    day = p.run_date + timedelta(days=landed_days(spark, config))
    if ctx.run_date != day + timedelta(days=1):
        log.warning(
            "generate --next-day lands %s (the day after the history), for a run on %s; "
            "the run date given (%s) is not used",
            day,
            day + timedelta(days=1),
            ctx.run_date,
        )
    with step(log, f"generate.next_day {day}") as s:
        world = gen.customers(spark, p).persist()
        try:
            transactions = day_transactions(world, p, day)
            clicks = day_events(world, p, day)
            counts = _land(spark, config, p, day, transactions, clicks)
        finally:
            world.unpersist()
        row = [(day, day + timedelta(days=1), *counts)]
        tables.append(
            spark.createDataFrame(row, TRUTH_SCHEMA), tables.ground_truth(config, TRUTH_TABLE)
        )
        s.rows(
            order_lines=counts[0],
            late_order_lines=counts[1],
            refunds=counts[2],
            events=counts[3],
            late_events=counts[4],
        )


def _day_no(day: date) -> int:
    return (day - EPOCH).days


def day_transactions(world: DataFrame, p: GenParams, day: date) -> DataFrame:
    """The transaction rows delivered for `day` (contract columns) plus `_late`."""
    d, n = Draw(p.seed), _day_no(day)
    window = world.withColumns({"start_date": F.lit(day), "end_date": F.lit(day)})
    orders = response.baseline_orders(response.baseline_days(window, p.seed), p.seed)
    lines = response.order_lines(orders, p, p.seed)
    # A late store order is dated the day before; `_late` says which rows are late.
    late_store = (F.col("channel_i") == 2) & (
        d.u("next/late_store", F.col("order_id")) < m.LATE_STORE_ORDER_SHARE
    )
    shifted = lines.withColumn(
        "order_ms", F.col("order_ms") - F.when(late_store, DAY_MS).otherwise(0)
    )
    sales = response.transactions(shifted).withColumn(
        "_late",
        (F.col("channel") == "store")
        & (d.u("next/late_store", F.col("order_id")) < m.LATE_STORE_ORDER_SHARE),
    )
    # The generator's refunds of its history's orders that happen on `day`: with the cut moved
    # to the day after, they are drawn exactly as the history would have had them.
    after = GenParams(
        p.seed,
        day + timedelta(days=1),
        p.customers,
        p.days + (day - p.run_date).days + 1,
        p.defect_rate,
        p.crm_exports,
        p.transaction_files,
        p.event_files,
    )
    rows = gen.transactions(gen.order_lines(world, p), after)
    on_day = (F.col("_ms") >= n * DAY_MS) & (F.col("_ms") < (n + 1) * DAY_MS)
    refunds = rows.where(~F.col("_sale") & on_day).withColumn("_late", F.lit(False))
    columns = [f.name for f in contracts.TRANSACTIONS.fields]
    return sales.select(*columns, "_late").unionByName(refunds.select(*columns, "_late"))


def day_events(world: DataFrame, p: GenParams, day: date) -> DataFrame:
    """The events delivered for `day` (internal event frame, events.render_events) plus
    `_late`: browse sessions of active customers and checkouts of the day's online orders."""
    d, n = Draw(p.seed), _day_no(day)
    active = F.lit(n).between(F.col("active_from_day"), F.col("active_until_day"))
    sessions = F.least(
        approx_poisson(F.col("srate"), d.z("next/browse", F.col("idx"), F.lit(n))),
        F.lit(m.NEXT_DAY_MAX_SESSIONS),
    )
    people = world.withColumns(
        {
            "n_browse": F.when(active, sessions).otherwise(0),
            "ws_ms": F.lit(n * DAY_MS),
            "we_ms": F.lit((n + 1) * DAY_MS),
        }
    )
    # Session numbers of their own per day, above any the history drew.
    first = 1_000_000 + (n - p.start_day) * (m.NEXT_DAY_MAX_SESSIONS + 1)
    browse = events.browse_events(people.select(*events.BROWSER_COLUMNS), p, first)
    late = (F.col("platform") != "web") & (
        d.u("next/late_app", F.col("key"), F.col("session_no")) < m.LATE_APP_SESSION_SHARE
    )
    browse = browse.withColumns(
        {"event_ms": F.col("event_ms") - F.when(late, DAY_MS).otherwise(0), "_late": late}
    )
    window = world.withColumns({"start_date": F.lit(day), "end_date": F.lit(day)})
    orders = response.baseline_orders(response.baseline_days(window, p.seed), p.seed)
    lines = response.order_lines(orders, p, p.seed).join(
        world.select("idx", "app_platform", "devices"), "idx"
    )
    # Checkout draws are keyed by the order: its id stands in for the history's order number.
    checkouts = events.purchase_events(lines.withColumn("order_no", F.col("order_id")), p)
    return browse.unionByName(checkouts.withColumn("_late", F.lit(False)))


def _land(
    spark: SparkSession,
    config: Config,
    p: GenParams,
    day: date,
    transactions: DataFrame,
    clicks: DataFrame,
) -> tuple[int, int, int, int, int]:
    """Writes the day's files (replacing a partial landing of the same day) and counts them."""
    t_path = f"{tables.landing(config, 'transactions')}/{folder(day)}"
    e_path = f"{tables.landing(config, 'events')}/{folder(day)}"
    transactions = transactions.persist()
    rendered = events.render_events(clicks, p, ["_late"]).persist()
    try:
        files.delete(spark, t_path)
        files.delete(spark, e_path)
        columns = [f.name for f in contracts.TRANSACTIONS.fields]
        transactions.select(*columns).coalesce(1).write.option("header", True).csv(t_path)
        rendered.select("value").coalesce(1).write.text(e_path)
        sale = F.col("status") != "refunded"
        t = transactions.agg(
            F.count(F.when(sale, 1)).alias("lines"),
            F.count(F.when(sale & F.col("_late"), 1)).alias("late"),
            F.count(F.when(~sale, 1)).alias("refunds"),
        ).first()
        e = rendered.agg(
            F.count(F.lit(1)).alias("events"), F.count(F.when(F.col("_late"), 1)).alias("late")
        ).first()
        assert t is not None  # one-row aggregates
        assert e is not None
        return int(t["lines"]), int(t["late"]), int(t["refunds"]), int(e["events"]), int(e["late"])
    finally:
        transactions.unpersist()
        rendered.unpersist()

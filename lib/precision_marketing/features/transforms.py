"""Silver -> one point-in-time feature row per customer for a given as_of date.

Every input is cut at `as_of` midnight (UTC) before anything is computed, so an event, order,
refund or CRM change on or after that instant cannot change the snapshot. Each source is reduced
by one grouped aggregation with conditional sums (no per-window self-joins, no Python UDFs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing import definitions, windows
from precision_marketing.definitions import signed_up, unlisted
from precision_marketing.features.rfm import with_rfm
from precision_marketing.schemas.gold import CUSTOMER_DAILY as DAILY
from precision_marketing.schemas.gold import DAILY_MONEY
from precision_marketing.schemas.project import conform
from precision_marketing.silver.transforms import age_band_from_year, latest_per_key

EMAIL_OPEN = "email_open"


def as_of_ts(as_of: date) -> Column:
    """Midnight at the start of `as_of` in the session time zone (UTC in every env)."""
    return F.lit(as_of).cast("timestamp")


def _ratio(num: Column, den: Column) -> Column:
    """num / den, null when the denominator is zero (a rate of nothing is unknown, not 0)."""
    return F.when(den > 0, num / den)


def _count_if(cond: Column) -> Column:
    return F.count(F.when(cond, 1))


def _distinct_count(col: Column) -> Column:
    """Distinct non-null values of `col` in the group, as a set's size.

    Several count_distinct over different columns make Spark expand every row once per distinct
    aggregate (4x the events here) before two shuffles; the per-customer sets are small, and at
    100,000 customers this aggregate ran 2.5x faster (bench/README.md).
    """
    return F.size(F.collect_set(col))


def _days_since(as_of: date, ts: Column) -> Column:
    return F.datediff(F.lit(as_of), F.to_date(ts))


def safe_name(value: str) -> str:
    """A category as a column suffix: 'home & garden' -> 'home_garden'."""
    return "_".join("".join(c if c.isalnum() else " " for c in value.lower()).split())


def customers_as_of(history: DataFrame, as_of: date) -> DataFrame:
    """The CRM state each customer had just before `as_of`; not-yet-signed-up ones are dropped.

    The age band is the one on `as_of`, from the birth year silver keeps: the band silver
    stored is the one on the day silver ran, which for a past snapshot is a later age. A
    history without birth years (written before silver kept them) keeps that stored band.
    """
    known = history.where(F.col("updated_at") < as_of_ts(as_of))
    latest = latest_per_key(known, ["customer_id"], [F.col("updated_at").desc()])
    current = latest.where(signed_up(as_of))
    band = (
        age_band_from_year(F.col("birth_year"), as_of)
        if "birth_year" in history.columns
        else F.col("age_band")
    )
    return current.select(
        "customer_id",
        band.alias("age_band"),
        "gender",
        "region",
        "signup_date",
        F.datediff(F.lit(as_of), F.col("signup_date")).alias("tenure_days"),
        "loyalty_tier",
        "consent_email",
        "consent_sms",
        "consent_push",
    )


def customer_base(history: DataFrame, active: DataFrame, as_of: date) -> DataFrame:
    """Who a snapshot describes: the CRM's customers as of `as_of`, plus customers with activity
    before it (`active`: customer_id) that the CRM has never listed, with null CRM attributes.

    Without a CRM the base is the active customers alone; a customer the CRM lists with a later
    signup stays out, as customers_as_of has it.
    """
    return customers_as_of(history, as_of).unionByName(
        unlisted(history, active), allowMissingColumns=True
    )


# The event columns features read: an explicit projection keeps the other silver columns out of
# the scans (three of them: device owners, known and anonymous events).
EVENT_COLUMNS = (
    "customer_id",
    "device_id",
    "session_id",
    "event_type",
    "item_id",
    "category",
    "platform",
    "event_ts",
    "event_date",
)


def events_before(events: DataFrame, as_of: date) -> DataFrame:
    """The events features read, cut at as_of."""
    return events.where(windows.before(F.col("event_ts"), F.col("event_date"), as_of)).select(
        *EVENT_COLUMNS
    )


def device_owners(events: DataFrame) -> DataFrame:
    """device_id -> the customer who last logged in on it (ties: the larger customer_id)."""
    logged_in = events.where(F.col("customer_id").isNotNull() & F.col("device_id").isNotNull())
    return logged_in.groupBy("device_id").agg(
        F.max_by("customer_id", F.struct("event_ts", "customer_id")).alias("owner_id")
    )


def stitch(events: DataFrame) -> DataFrame:
    """Events with anonymous device activity attributed to the device's logged-in customer.

    `events` must already be cut at as_of, so a login after as_of cannot claim earlier activity.
    Only anonymous events are joined to the device map; unattributable ones are dropped.
    """
    owners = device_owners(events)
    known = events.where(F.col("customer_id").isNotNull())
    anonymous = (
        events.where(F.col("customer_id").isNull())
        .join(owners, "device_id")
        .withColumn("customer_id", F.col("owner_id"))
        .drop("owner_id")
    )
    return known.unionByName(anonymous)


# Events that touch an item, for interest tags: the item's catalog category and brand are terms.
TOUCH_EVENTS = ("product_view", "add_to_cart", "purchase")
TOUCHED_TERMS = "touched_terms"


def item_terms(items: DataFrame) -> DataFrame:
    """item_id -> its catalog category and brand (the non-null ones): the terms a touch adds."""
    return items.select(
        "item_id", F.array_compact(F.array("category", "brand")).alias("_item_terms")
    )


def behaviour_features(
    events: DataFrame,
    items: DataFrame,
    as_of: date,
    categories: Sequence[str],
    recent_days: int = 30,
) -> DataFrame:
    """Per-customer browsing, funnel, campaign and view-affinity features of stitched events,
    and TOUCHED_TERMS, the terms of every item touched (interest tags' input, activity_terms).

    The terms ride along in the same aggregate so the events are read once: feeding them to
    interest tags from the events themselves took a cache of every event and a second pass.
    """
    events = events.join(F.broadcast(item_terms(items)), "item_id", "left")
    et = F.col("event_type")
    visit = et != EMAIL_OPEN  # a newsletter open is not a visit to the shop
    recent = F.col("event_date") >= F.date_sub(F.lit(as_of), recent_days)
    view = et == "product_view"
    aggs = [
        _distinct_count(F.when(visit, F.col("session_id"))).alias("sessions"),
        _distinct_count(F.when(visit & recent, F.col("session_id"))).alias(
            f"sessions_{recent_days}d"
        ),
        _distinct_count(F.when(visit, F.col("event_date"))).alias("active_days"),
        _count_if(view).alias("product_views"),
        _count_if(et == "search").alias("searches"),
        _count_if(et == "add_to_cart").alias("add_to_carts"),
        _count_if(et == "purchase").alias("purchase_events"),
        _count_if(et == EMAIL_OPEN).alias("email_opens"),
        _count_if((et == EMAIL_OPEN) & recent).alias(f"email_opens_{recent_days}d"),
        _count_if(et == "campaign_click").alias("campaign_clicks"),
        F.max(F.when(visit, F.col("event_ts"))).alias("_last_visit_ts"),
        F.min("event_date").alias("_first_seen"),
        F.mode(F.when(visit, F.col("platform")), deterministic=True).alias("preferred_platform"),
        F.mode(F.when(visit, F.hour("event_ts")), deterministic=True).alias("preferred_hour"),
        *(
            _count_if(view & (F.col("category") == c)).alias(f"_views_{safe_name(c)}")
            for c in categories
        ),
        F.flatten(F.collect_list(F.when(et.isin(*TOUCH_EVENTS), F.col("_item_terms")))).alias(
            TOUCHED_TERMS
        ),
    ]
    agg = events.groupBy("customer_id").agg(*aggs)
    observed_days = F.datediff(F.lit(as_of), F.col("_first_seen"))
    return agg.select(
        "customer_id",
        "sessions",
        f"sessions_{recent_days}d",
        "active_days",
        "product_views",
        "searches",
        "add_to_carts",
        "purchase_events",
        _ratio(F.col("add_to_carts"), F.col("product_views")).alias("view_to_cart_rate"),
        _ratio(F.col("purchase_events"), F.col("add_to_carts")).alias("cart_to_purchase_rate"),
        _days_since(as_of, F.col("_last_visit_ts")).alias("days_since_last_visit"),
        "preferred_platform",
        "preferred_hour",
        "email_opens",
        f"email_opens_{recent_days}d",
        # Sends are not in the data: opens per 30 days since the customer was first seen.
        _ratio(F.col("email_opens") * 30.0, observed_days).alias("email_open_rate"),
        "campaign_clicks",
        # Share of visits that started from a campaign click.
        _ratio(F.col("campaign_clicks"), F.col("sessions")).alias("campaign_click_rate"),
        *(
            _ratio(F.col(f"_views_{safe_name(c)}"), F.col("product_views")).alias(
                f"view_share_{safe_name(c)}"
            )
            for c in categories
        ),
        TOUCHED_TERMS,
    )


def order_features(
    lines: DataFrame,
    items: DataFrame,
    as_of: date,
    windows: Sequence[int],
    categories: Sequence[str],
) -> DataFrame:
    """Per-customer order counts, spend per window, AOV, discount and refund behaviour: the sums
    over `customer_daily` of the lines (`orders_from_daily`), computed here from all of them."""
    return orders_from_daily(customer_daily(lines, items, as_of), as_of, windows, categories)


def customer_daily(lines: DataFrame, items: DataFrame, as_of: date) -> DataFrame:
    """One row per customer and order day (schemas.gold.CUSTOMER_DAILY): the additive measures
    of the placed orders of that day, as known at as_of; an order's day is its first line's.

    Spend is what the customer had paid as known at as_of (`definitions.net_amount` known at
    as_of midnight): cancelled lines count nothing, and a refund counts only if it happened
    before as_of (silver nets refunds whenever they arrive). Orders are orders placed
    (`definitions.placed`): a returned order was placed, with its spend netted to zero, which
    refund_rate describes. Money is summed in exact cents, so the sums are the same however
    Spark partitions the rows and whichever days they were summed in first.
    """
    cut = as_of_ts(as_of)
    before = lines.where((F.col("order_ts") < cut) & F.col("customer_id").isNotNull())
    with_cat = before.join(F.broadcast(items.select("item_id", "category")), "item_id", "left")
    active = definitions.placed()
    line_level = with_cat.select(
        "customer_id",
        "order_id",
        "order_ts",
        "category",
        active.alias("active"),
        definitions.net_amount(cut).alias("amount"),
        F.when(active, F.col("quantity")).otherwise(F.lit(0)).alias("units"),
        definitions.refunded_quantity(cut).alias("refunded_units"),
        (active & (F.col("discount") > 0)).alias("discounted"),
    )
    by_category = F.when(
        F.col("category").isNotNull() & F.col("amount").isNotNull(),
        F.struct(F.col("category").alias("c"), F.col("amount").alias("a")),
    )
    orders = line_level.groupBy("customer_id", "order_id").agg(
        F.min("order_ts").alias("order_ts"),
        F.max("active").alias("active"),
        F.sum("amount").alias("amount"),
        _count_if(F.col("active")).alias("lines"),
        F.sum("units").alias("units"),
        F.sum("refunded_units").alias("refunded_units"),
        F.max("discounted").alias("discounted"),
        F.collect_list(by_category).alias("_by_category"),
    )
    # A fully cancelled order did not happen; a fully refunded one did (with zero spend).
    placed = orders.where("active").withColumn("order_date", F.to_date("order_ts"))
    days = placed.groupBy("customer_id", "order_date").agg(
        F.count(F.lit(1)).alias("orders"),
        F.sum("amount").alias("spend"),
        F.sum("lines").alias("lines"),
        F.sum("units").alias("units"),
        F.sum("refunded_units").alias("refunded_units"),
        _count_if(F.col("discounted")).alias("discounted_orders"),
        F.min("order_ts").alias("first_order_ts"),
        F.max("order_ts").alias("last_order_ts"),
        F.flatten(F.collect_list("_by_category")).alias("_by_category"),
    )
    return conform(days.withColumn("category_spend", _summed_by_key("_by_category")), DAILY)


def _summed_by_key(pairs: str) -> Column:
    """An array of (c, a) structs as a map c -> sum of a, in exact cents (no UDF)."""
    keys = F.array_distinct(F.transform(F.col(pairs), lambda x: x["c"]))
    zero = F.lit(0).cast(DAILY_MONEY)
    sums = F.transform(
        keys,
        lambda k: F.aggregate(
            F.filter(F.col(pairs), lambda x: x["c"] == k),
            zero,
            lambda acc, x: (acc + x["a"]).cast(DAILY_MONEY),
        ),
    )
    return F.map_from_arrays(keys, sums)


def orders_from_daily(
    daily: DataFrame, as_of: date, windows: Sequence[int], categories: Sequence[str]
) -> DataFrame:
    """The order features of user_features, summed per customer over `customer_daily` rows
    (all days before as_of, as known at as_of): counts and spend per window and lifetime, AOV,
    lines per order, discount and refund shares, category spend shares, first and last order."""
    window_aggs: list[Column] = []
    for w in windows:
        inside = F.col("order_date") >= F.date_sub(F.lit(as_of), w)
        window_aggs += [
            F.sum(F.when(inside, F.col("orders")).otherwise(F.lit(0))).alias(f"orders_{w}d"),
            F.sum(F.when(inside, F.col("spend")).otherwise(F.lit(0))).alias(f"spend_{w}d"),
        ]
    agg = daily.groupBy("customer_id").agg(
        F.max("last_order_ts").alias("_last_order_ts"),
        F.min("first_order_ts").alias("_first_order_ts"),
        *window_aggs,
        F.sum("orders").alias("orders_lifetime"),
        F.sum("spend").alias("spend_lifetime"),
        F.sum("lines").alias("_lines"),
        F.sum("units").alias("_units"),
        F.sum("refunded_units").alias("_refunded_units"),
        F.sum("discounted_orders").alias("_discounted_orders"),
        *(
            F.sum(F.try_element_at("category_spend", F.lit(c))).alias(f"_spend_{safe_name(c)}")
            for c in categories
        ),
    )
    spend = F.col("spend_lifetime")  # exact cents
    return agg.select(
        "customer_id",
        _days_since(as_of, F.col("_last_order_ts")).alias("days_since_last_order"),
        _days_since(as_of, F.col("_first_order_ts")).alias("days_since_first_order"),
        *(F.col(f"orders_{w}d") for w in windows),
        "orders_lifetime",
        *(F.col(f"spend_{w}d").cast("double").alias(f"spend_{w}d") for w in windows),
        spend.cast("double").alias("spend_lifetime"),
        F.round(spend / F.col("orders_lifetime"), 2).cast("double").alias("avg_order_value"),
        (F.col("_lines") / F.col("orders_lifetime")).alias("lines_per_order"),
        (F.col("_discounted_orders") / F.col("orders_lifetime")).alias("discount_order_share"),
        _ratio(F.col("_refunded_units"), F.col("_units")).alias("refund_rate"),
        *(
            _ratio(
                F.coalesce(F.col(f"_spend_{safe_name(c)}"), F.lit(0)).cast("double"),
                spend.cast("double"),
            ).alias(f"spend_share_{safe_name(c)}")
            for c in categories
        ),
    )


def activity_terms(
    behaviour: DataFrame,
    lines: DataFrame,
    items: DataFrame,
    as_of: date,
    purchases_in_events: bool = True,
) -> DataFrame:
    """(customer_id, terms) rows: the LDA input, one category and one brand per touch.

    A touch is a product view, add-to-cart or purchase event (behaviour_features' TOUCHED_TERMS)
    or an order line the events do not show: a store purchase, or any purchase when the events
    hold none (`purchases_in_events` false: a shop without a clickstream).
    """
    # An order line without a channel counts as shown, like a web one.
    not_store = F.coalesce(F.col("channel") != F.lit("store"), F.lit(True))
    shown_in_events = not_store if purchases_in_events else F.lit(False)
    store = lines.where(
        (F.col("order_ts") < as_of_ts(as_of))
        & ~shown_in_events
        & definitions.placed()
        & F.col("customer_id").isNotNull()
    )
    store_terms = store.join(F.broadcast(item_terms(items)), "item_id").select(
        "customer_id", F.col("_item_terms").alias("terms")
    )
    return behaviour.select("customer_id", F.col(TOUCHED_TERMS).alias("terms")).unionByName(
        store_terms
    )


def assemble(
    customers: DataFrame,
    behaviour: DataFrame,
    orders: DataFrame,
    tags: DataFrame | None,
    as_of: date,
    windows: Sequence[int],
) -> DataFrame:
    """Joins the per-source aggregates onto the customer base, zero-filling absent activity.

    `tags` None: interest tags were skipped, and interest_tags is null for everyone (unknown,
    not "no interests"), keeping the column and its type.
    """
    joined = customers.join(orders, "customer_id", "left").join(behaviour, "customer_id", "left")
    if tags is not None:
        joined = joined.join(tags, "customer_id", "left")
    no_tags = F.array().cast("array<string>") if tags is not None else F.lit(None)
    zero_counts = [
        *(f"orders_{w}d" for w in windows),
        "orders_lifetime",
        "sessions",
        *(c for c in behaviour.columns if c.startswith("sessions_")),
        "active_days",
        "product_views",
        "searches",
        "add_to_carts",
        "purchase_events",
        "email_opens",
        *(c for c in behaviour.columns if c.startswith("email_opens_")),
        "campaign_clicks",
    ]
    zero_amounts = [*(f"spend_{w}d" for w in windows), "spend_lifetime"]
    filled = joined.withColumns(
        {
            **{c: F.coalesce(F.col(c), F.lit(0)).cast("long") for c in zero_counts},
            **{c: F.coalesce(F.col(c), F.lit(0.0)) for c in zero_amounts},
            "interest_tags": (
                F.coalesce(F.col("interest_tags"), no_tags)
                if tags is not None
                else no_tags.cast("array<string>")
            ),
        }
    )
    return filled.withColumn("as_of_date", F.lit(as_of))


def score_rfm(features: DataFrame, windows: Sequence[int]) -> DataFrame:
    """RFM over the longest window: R = days since last order, F = orders, M = spend.

    It reads `features` twice (quintile cuts, then scores): pass a persisted frame.
    """
    return with_rfm(
        features,
        "days_since_last_order",
        f"orders_{max(windows)}d",
        f"spend_{max(windows)}d",
        buyer=F.col("orders_lifetime") > 0,
    )

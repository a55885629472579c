"""Simulated campaign response: what campaign audiences bought in the campaign windows.

Pure DataFrame builders in the generator's style (generate/draws.py): every draw is a hash of
the response seed, a tag and structural keys, and each member's planted attributes are
recomputed from its customer index with `generate.customer_attributes`, exactly as the generator
drew them. For the members (treatment and control) of the campaign windows being simulated:

- baseline orders, what customers buy anyway: each day of any window they are a member of,
  Poisson(λ) orders on days they are active, at uniform times of the day. Keyed by (customer,
  day), not by campaign, so a customer in several overlapping campaigns buys at their planted
  rate once, and both groups are drawn alike;
- the campaign's effect: per treatment member of a window, with the planted probability u of
  their archetype, one extra order at a uniform time of the window.

Simulated orders are completed and never refunded, so "converted" is "ordered in the window":
with d active days in the window, an untreated member converts with probability 1 - exp(-λ d)
and a treated one with 1 - (1 - u) exp(-λ d): the planted conversion uplift is u exp(-λ d).
(A customer treated by another campaign with an overlapping window can convert through that
campaign's extra order; it lowers both groups' non-conversion alike, the uplift slightly.)
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.config import ConfigError
from precision_marketing.generate import customers, draws, items
from precision_marketing.generate import model as m
from precision_marketing.generate.draws import Draw
from precision_marketing.generate.model import DAY_MS, EPOCH, GenParams
from precision_marketing.measure.transforms import EXPERIMENT, TREATMENT

# Order ids: "RB-<customer index>-<yyyymmdd>-<n>" for baseline orders, "RR-<campaign>-<window
# start yyyymmdd>-<customer index>" for responses. The generator's are "O" + 12 digits and its
# defects' "dfx-o-<n>", so they never collide.
BASELINE_PREFIX = "RB-"
RESPONSE_PREFIX = "RR-"
CUSTOMER_ID = r"^C(\d{8})$"  # the generator's customer ids; other ids are not simulated
# Tries of the next item of the category when the chosen one is retired (inactive): with 5% of
# items inactive, five tries leave a retired item once in some three million lines.
ACTIVE_ITEM_TRIES = 5
# What the simulation needs of a customer's planted attributes.
ATTRIBUTES = (
    "idx",
    "customer_id",
    "arch",
    "lam",
    "active_from_day",
    "active_until_day",
    "pref_channel",
    "offset_min",
    "home_store",
    "cum",
    "offsets",
    "extra_lines",
    "extra_units",
    "discount_prob",
)
# Columns every order carries into `order_lines`.
ORDER_COLUMNS = ("order_id", "order_ms", *ATTRIBUTES)


def check_uplift(uplift_by_archetype: Mapping[str, float]) -> None:
    known = {a.name for a in m.ARCHETYPES}
    for name, value in uplift_by_archetype.items():
        if name not in known:
            raise ConfigError(
                f"response.uplift_by_archetype.{name}: unknown archetype "
                f"(known: {', '.join(sorted(known))})"
            )
        if not 0.0 <= value <= 1.0:
            raise ConfigError(
                f"response.uplift_by_archetype.{name}: {value} is not a probability in [0, 1]"
            )


def with_world(members: DataFrame, p: GenParams) -> DataFrame:
    """Experiment members (measure.transforms.members) with their planted attributes; members
    who are not generated customers are dropped."""
    idx = F.regexp_extract("customer_id", CUSTOMER_ID, 1)
    with_idx = members.withColumn("idx", F.when(idx != "", idx.cast("long") - 1))
    known = with_idx.where(F.col("idx").between(0, p.customers - 1))
    world = customers.customer_attributes(known, p)
    return world.select(*members.columns, *(a for a in ATTRIBUTES if a not in members.columns))


def _days(day: Column) -> Column:
    """A date as days since 1970-01-01."""
    return F.datediff(day, F.lit(EPOCH))


def planted(world: DataFrame, uplift_by_archetype: Mapping[str, float], seed: int) -> DataFrame:
    """Per member: the planted uplift u of their archetype, whether they respond (treatment
    only), and λ x the days of the window they are active (their expected baseline orders)."""
    d = Draw(seed)
    rates = [float(uplift_by_archetype.get(a.name, 0.0)) for a in m.ARCHETYPES]
    start, end = _days(F.col("start_date")), _days(F.col("end_date")) + 1  # end exclusive
    active_start = F.greatest(start, F.col("active_from_day").cast("int"))
    active_end = F.least(end, F.col("active_until_day").cast("int") + 1)
    df = world.withColumns(
        {
            "planted_uplift": draws.lookup(rates, F.col("arch")),
            "treated": F.col("group") == TREATMENT,
            "active_days": F.greatest(active_end - active_start, F.lit(0)),
        }
    )
    u = d.u("resp/respond", F.col("campaign_id"), F.col("start_date"), F.col("idx"))
    return df.withColumns(
        {
            "expected_orders": F.col("lam") * F.col("active_days"),
            "responded": F.col("treated") & (u < F.col("planted_uplift")),
        }
    )


def baseline_days(world: DataFrame, seed: int) -> DataFrame:
    """Per customer and day of any window they are a member of: their baseline order count."""
    d = Draw(seed)
    idx, day = F.col("idx"), F.col("day")
    days = world.select(
        *ATTRIBUTES,
        F.explode(F.sequence(_days(F.col("start_date")), _days(F.col("end_date")))).alias("day"),
    ).dropDuplicates(["idx", "day"])
    active = day.between(F.col("active_from_day"), F.col("active_until_day"))
    orders = draws.poisson(F.col("lam"), d.u("resp/orders", idx, day), d.z("resp/orders", idx, day))
    return days.withColumn("baseline_orders", F.when(active, orders).otherwise(0))


def baseline_orders(days: DataFrame, seed: int) -> DataFrame:
    """One row per baseline order, at a uniform time of its day."""
    d = Draw(seed)
    orders = days.where(F.col("baseline_orders") > 0).select(
        "*", F.explode(F.sequence(F.lit(1), F.col("baseline_orders"))).alias("n")
    )
    stamp = F.date_format(F.date_add(F.lit(EPOCH), F.col("day")), "yyyyMMdd")
    ids = orders.withColumn(
        "order_id",
        F.concat(
            F.lit(BASELINE_PREFIX),
            F.concat_ws("-", draws.padded(F.col("idx") + 1, 8), stamp, F.col("n").cast("string")),
        ),
    )
    in_day = F.floor(d.u("resp/b_time", F.col("order_id")) * DAY_MS)
    return ids.withColumn("order_ms", F.col("day").cast("long") * DAY_MS + in_day).select(
        *ORDER_COLUMNS
    )


def response_orders(members: DataFrame, seed: int) -> DataFrame:
    """One row per responding treatment member: its extra order, uniform in the window."""
    d = Draw(seed)
    start = _days(F.col("start_date")).cast("long") * DAY_MS
    end = (_days(F.col("end_date")) + 1).cast("long") * DAY_MS
    order_id = F.concat(
        F.lit(RESPONSE_PREFIX),
        F.concat_ws(
            "-",
            F.col("campaign_id"),
            F.date_format(F.col("start_date"), "yyyyMMdd"),
            draws.padded(F.col("idx") + 1, 8),
        ),
    )
    ids = members.where(F.col("responded")).withColumn("order_id", order_id)
    ms = start + F.floor(d.u("resp/r_time", F.col("order_id")) * (end - start))
    return ids.withColumn("order_ms", ms).select(*ORDER_COLUMNS)


def campaign_effects(members: DataFrame, days: DataFrame) -> DataFrame:
    """ground_truth/campaign_effects: the planted effect on every member of every window.

    expected_conversion_uplift = u x P(no baseline order in the window) is what a perfect
    measurement of the member's conversion uplift finds; its mean over the treatment group is
    the planted uplift the measured overall one estimates.
    """
    counts = days.select(
        F.col("idx").alias("_idx"), F.col("day").alias("_day"), F.col("baseline_orders")
    )
    in_window = (F.col("idx") == F.col("_idx")) & F.col("_day").between(
        _days(F.col("start_date")), _days(F.col("end_date"))
    )
    no_baseline = F.exp(-F.col("expected_orders"))
    return (
        members.join(counts, in_window, "left")
        .groupBy(
            *EXPERIMENT,
            "customer_id",
            "arch",
            "segment_name",
            "group",
            "treated",
            "planted_uplift",
            "expected_orders",
            "responded",
        )
        .agg(F.coalesce(F.sum("baseline_orders"), F.lit(0)).cast("int").alias("baseline_orders"))
        .select(
            *EXPERIMENT,
            "customer_id",
            draws.lookup([a.name for a in m.ARCHETYPES], F.col("arch")).alias("archetype"),
            "segment_name",
            "group",
            "treated",
            "planted_uplift",
            F.col("expected_orders").alias("expected_baseline_orders"),
            (1.0 - no_baseline).alias("baseline_conversion_probability"),
            (F.col("planted_uplift") * no_baseline).alias("expected_conversion_uplift"),
            "responded",
            "baseline_orders",
        )
    )


def _active_item(world_draw: Draw, p: GenParams, item_idx: Column) -> Column:
    """`item_idx`, or the next active item of its category when it is retired: simulated
    orders happen after the history, when retired items are no longer sold."""
    category = item_idx % items.N_CATEGORIES
    j = F.floor(item_idx / items.N_CATEGORIES)
    n_c = draws.lookup(
        [m.items_in_category(p.items, c) for c in range(items.N_CATEGORIES)], category.cast("int")
    )
    tries = [
        (category + ((j + k) % n_c) * items.N_CATEGORIES).cast("long")
        for k in range(ACTIVE_ITEM_TRIES)
    ]
    # The catalog's rule (generate.catalog): active unless u(item_active) < INACTIVE_ITEM_SHARE.
    active = [world_draw.u("item_active", t) >= m.INACTIVE_ITEM_SHARE for t in tries]
    return F.coalesce(*(F.when(a, t) for a, t in zip(active, tries, strict=True)), tries[-1])


def order_lines(orders: DataFrame, p: GenParams, seed: int) -> DataFrame:
    """The lines of `orders` (ORDER_COLUMNS), like the generator's baskets: lines, categories,
    items, units, discounts and channels follow the customer's planted mix."""
    d, world = Draw(seed), Draw(p.seed)
    oid, ln = F.col("order_id"), F.col("line_no")
    orders = orders.withColumns(
        {
            "channel_i": F.when(
                d.u("resp/o_channel", oid) < m.PREFERRED_CHANNEL_SHARE, F.col("pref_channel")
            ).otherwise(
                draws.pick_by_archetype(
                    d.u("resp/o_channel2", oid), "channel_weights", F.col("arch")
                )
            ),
            "n_lines": 1
            + F.least(
                draws.geometric(F.col("extra_lines"), d.u("resp/o_lines", oid)),
                F.lit(m.MAX_EXTRA_LINES),
            ),
            "discount_pct": F.when(
                d.u("resp/o_discount", oid) < F.col("discount_prob"),
                draws.lookup(m.DISCOUNT_PCTS, d.index("resp/o_pct", len(m.DISCOUNT_PCTS), oid)),
            ).otherwise(0.0),
        }
    )
    lines = orders.withColumn("line_no", F.explode(F.sequence(F.lit(1), F.col("n_lines"))))
    category = draws.pick_per_row(
        d.u("resp/l_category", oid, ln),
        [F.element_at("cum", k + 1) for k in range(items.N_CATEGORIES - 1)],
    )
    # One column per stage: each is used several times by the next, and Spark does not inline
    # a non-trivial expression into several uses, so the expression trees stay small.
    lines = lines.withColumn("_category", category)
    lines = lines.withColumn(
        "_chosen",
        items.choose_item(
            p,
            F.col("_category"),
            F.col("offsets"),
            d.u("resp/l_popular", oid, ln),
            d.u("resp/l_item", oid, ln),
        ),
    )
    lines = lines.withColumn("item_idx", _active_item(world, p, F.col("_chosen")))
    lines = lines.withColumns(
        {
            "quantity": 1
            + F.least(
                draws.geometric(F.col("extra_units"), d.u("resp/l_units", oid, ln)),
                F.lit(m.MAX_EXTRA_UNITS),
            ),
            # The catalog price: prices are drawn with the world's seed, not the response's.
            "unit_price": items.item_price(world, F.col("item_idx")),
        }
    )
    return lines.withColumn(
        "discount",
        F.round(F.col("unit_price") * F.col("quantity") * F.col("discount_pct"), 2),
    )


def transactions(lines: DataFrame) -> DataFrame:
    """Landing transaction rows in contract column order."""
    return lines.select(
        "order_id",
        F.col("line_no").cast("int").alias("line_no"),
        "customer_id",
        items.item_id(F.col("item_idx")).alias("item_id"),
        F.col("quantity").cast("int").alias("quantity"),
        F.col("unit_price").cast("double").alias("unit_price"),
        F.col("discount").cast("double").alias("discount"),
        F.lit(contracts.CURRENCIES[0]).alias("currency"),
        draws.time_text(F.col("order_ms"), F.col("offset_min")).alias("order_time"),
        draws.lookup(contracts.SALES_CHANNELS, F.col("channel_i")).alias("channel"),
        F.when(F.col("channel_i") == 2, F.col("home_store")).alias("store_id"),
        F.lit("completed").alias("status"),
    )

"""Orders: the Poisson orders of each customer as order lines, and the transaction files."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing import contracts
from precision_marketing.generate import model as m
from precision_marketing.generate.draws import (
    Draw,
    geometric,
    lookup,
    padded,
    period,
    pick_by_archetype,
    pick_per_row,
    time_text,
)
from precision_marketing.generate.items import N_CATEGORIES, choose_item, item_id, item_price
from precision_marketing.generate.model import DAY_MS, GenParams


def order_lines(customers: DataFrame, p: GenParams) -> DataFrame:
    """One row per order line: the Poisson orders of each customer, exploded into lines."""
    d = Draw(p.seed)
    idx, on, ln = F.col("idx"), F.col("order_no"), F.col("line_no")
    orders = customers.where(F.col("n_orders") > 0).select(
        "idx",
        "customer_id",
        "arch",
        "ws_ms",
        "we_ms",
        "pref_channel",
        "app_platform",
        "devices",
        "offset_min",
        "home_store",
        "cum",
        "offsets",
        "extra_lines",
        "extra_units",
        "discount_prob",
        F.explode(F.sequence(F.lit(1), F.col("n_orders"))).alias("order_no"),
    )
    orders = orders.withColumns(
        {
            "order_id": F.concat(F.lit("O"), padded(idx + 1, 8), padded(on, 4)),
            "order_ms": F.col("ws_ms")
            + F.floor(d.u("o_time", idx, on) * (F.col("we_ms") - F.col("ws_ms"))),
            "channel_i": F.when(
                d.u("o_channel", idx, on) < m.PREFERRED_CHANNEL_SHARE, F.col("pref_channel")
            ).otherwise(
                pick_by_archetype(d.u("o_channel2", idx, on), "channel_weights", F.col("arch"))
            ),
            "n_lines": 1
            + F.least(
                geometric(F.col("extra_lines"), d.u("o_lines", idx, on)),
                F.lit(m.MAX_EXTRA_LINES),
            ),
            "cancelled": d.u("o_cancel", idx, on) < m.CANCEL_RATE,
            "discount_pct": F.when(
                d.u("o_discount", idx, on) < F.col("discount_prob"),
                lookup(m.DISCOUNT_PCTS, d.index("o_pct", len(m.DISCOUNT_PCTS), idx, on)),
            ).otherwise(0.0),
        }
    )
    lines = orders.withColumn("line_no", F.explode(F.sequence(F.lit(1), F.col("n_lines"))))
    category = pick_per_row(
        d.u("l_category", idx, on, ln),
        [F.element_at("cum", k + 1) for k in range(N_CATEGORIES - 1)],
    )
    lines = lines.withColumn("_category", category).withColumn(
        "item_idx",
        choose_item(
            p,
            F.col("_category"),
            F.col("offsets"),
            d.u("l_popular", idx, on, ln),
            d.u("l_item", idx, on, ln),
        ),
    )
    lines = lines.withColumns(
        {
            "quantity": 1
            + F.least(
                geometric(F.col("extra_units"), d.u("l_units", idx, on, ln)),
                F.lit(m.MAX_EXTRA_UNITS),
            ),
            "unit_price": item_price(d, F.col("item_idx")),
        }
    )
    return lines.withColumn(
        "discount",
        F.round(F.col("unit_price") * F.col("quantity") * F.col("discount_pct"), 2),
    )


def transactions(lines: DataFrame, p: GenParams) -> DataFrame:
    """Raw transaction rows (sales and later refunds) in contract order, plus `part`, `_sale`
    and `_ms` (the row's instant in epoch milliseconds)."""
    d = Draw(p.seed)
    idx, on, ln = F.col("idx"), F.col("order_no"), F.col("line_no")
    refund_ms = (
        F.col("order_ms")
        + DAY_MS
        + F.floor(d.u("r_time", idx, on, ln) * ((m.REFUND_MAX_DAYS - 1) * DAY_MS))
    )
    refunded = (
        ~F.col("cancelled")
        & (d.u("refund", idx, on, ln) < m.REFUND_RATE)
        & (refund_ms < p.run_day * DAY_MS)
    )
    refund_qty = 1 + F.floor(d.u("r_qty", idx, on, ln) * F.col("quantity")).cast("int")
    sale = F.struct(
        F.col("quantity").alias("quantity"),
        F.col("discount").alias("discount"),
        F.col("order_ms").alias("ms"),
        F.when(F.col("cancelled"), "cancelled").otherwise("completed").alias("status"),
    )
    refund = F.when(
        refunded,
        F.struct(
            refund_qty.alias("quantity"),
            F.round(F.col("discount") * refund_qty / F.col("quantity"), 2).alias("discount"),
            refund_ms.alias("ms"),
            F.lit("refunded").alias("status"),
        ),
    )
    rows = lines.withColumn("_row", F.explode(F.array(sale, refund))).where(
        F.col("_row").isNotNull()
    )
    return rows.select(
        F.col("order_id"),
        F.col("line_no").cast("int").alias("line_no"),
        F.col("customer_id"),
        item_id(F.col("item_idx")).alias("item_id"),
        F.col("_row.quantity").cast("int").alias("quantity"),
        F.col("unit_price").cast("double").alias("unit_price"),
        F.col("_row.discount").cast("double").alias("discount"),
        F.lit(contracts.CURRENCIES[0]).alias("currency"),
        time_text(F.col("_row.ms"), F.col("offset_min")).alias("order_time"),
        lookup(contracts.SALES_CHANNELS, F.col("channel_i")).alias("channel"),
        F.when(F.col("channel_i") == 2, F.col("home_store")).alias("store_id"),
        F.col("_row.status").alias("status"),
        period(F.col("_row.ms"), p, p.transaction_files).alias("part"),
        (F.col("_row.status") != "refunded").alias("_sale"),
        F.col("_row.ms").alias("_ms"),
    )

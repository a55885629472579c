"""The business rules every stage shares: what a purchase is, who counts as a customer at a date,
and how money is summed. Each is a small Column or DataFrame function, imported by features,
recommend, propensity, measure and bench alike, so a rule changes in one place.

Order-line rules read silver/order_lines columns; `known_at` (a timestamp Column) asks for the
state as known at that instant, which point-in-time features need: silver nets a refund into
its sale whenever the refund arrives. Without it, the state silver holds now is used.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from precision_marketing import windows

CANCELLED = "cancelled"
# Money is summed in cents, exactly: a sum of doubles depends on the order Spark adds them in,
# and a half-cent crossing made avg_order_value differ between two runs of the same data.
MONEY = DecimalType(18, 2)


def money(amount: Column) -> Column:
    """An amount in exact cents (rounded half up), ready to be summed order-independently."""
    return F.round(amount, 2).cast(MONEY)


def placed() -> Column:
    """An order line that happened: a cancelled line never did; a refunded one did (a return
    is refund behaviour, not an order that never was)."""
    return F.col("status") != F.lit(CANCELLED)


def refunded_quantity(known_at: Column | None = None) -> Column:
    """Units of a placed line refunded by `known_at` (None: every refund silver holds)."""
    refunded = F.col("refunded_quantity")
    if known_at is not None:
        refunded = F.when(F.col("refunded_at") < known_at, refunded).otherwise(F.lit(0))
    return F.when(placed(), refunded).otherwise(F.lit(0))


def net_quantity(known_at: Column | None = None) -> Column:
    """Units bought and kept: 0 for a cancelled line, refunds (known by `known_at`) netted.

    Without `known_at` it is silver's own `net_quantity`, which silver derives the same way.
    """
    if known_at is None:
        return F.col("net_quantity")
    return F.when(placed(), F.col("quantity") - refunded_quantity(known_at)).otherwise(F.lit(0))


def net_amount(known_at: Column | None = None) -> Column:
    """What the line's kept units cost, in exact cents (`MONEY`); silver's `net_amount` when
    `known_at` is None."""
    if known_at is None:
        return money(F.col("net_amount"))
    kept = F.col("gross_amount") * net_quantity(known_at) / F.col("quantity")
    return money(kept)


def net_purchase(known_at: Column | None = None) -> Column:
    """A purchase: an order line with units bought and kept (not cancelled, not fully refunded).

    The one meaning of "bought" for recommendations (a return is not a preference), propensity
    labels, campaign conversions and features' buyer counts.
    """
    return net_quantity(known_at) > 0


def purchases(order_lines: DataFrame, known_at: Column | None = None) -> DataFrame:
    """The order lines of known customers that are purchases (`net_purchase`)."""
    return order_lines.where(F.col("customer_id").isNotNull() & net_purchase(known_at))


def signed_up(as_of: date) -> Column:
    """A CRM customer exists from signup on (an unknown signup: always)."""
    return F.col("signup_date").isNull() | (F.col("signup_date") < F.lit(as_of))


def signed_up_before(customers: DataFrame, as_of: date) -> DataFrame:
    """customer_id of the CRM rows (`customers`) that had signed up before `as_of`."""
    return customers.where(signed_up(as_of)).select("customer_id").distinct()


def active_customers(events: DataFrame, order_lines: DataFrame, as_of: date) -> DataFrame:
    """customer_id of everyone with activity before `as_of`: any event of theirs, or an order
    line they placed. Anonymous events count through their device's customer, who is in here
    already by that customer's own logged-in events."""
    seen = events.where(
        F.col("customer_id").isNotNull()
        & windows.before(F.col("event_ts"), F.col("event_date"), as_of)
    ).select("customer_id")
    ordered = order_lines.where(
        F.col("customer_id").isNotNull()
        & placed()
        & windows.before(F.col("order_ts"), F.col("order_date"), as_of)
    ).select("customer_id")
    return seen.unionByName(ordered).distinct()


def unlisted(crm: DataFrame, active: DataFrame) -> DataFrame:
    """customer_id of the active customers (`active`: customer_id) the CRM never listed: without
    a CRM, every one of them."""
    return (
        active.select("customer_id")
        .distinct()
        .join(crm.select("customer_id"), "customer_id", "left_anti")
    )


def customers_at(crm: DataFrame, active: DataFrame, as_of: date) -> DataFrame:
    """customer_id of the customers a stage serves at `as_of`: the CRM's customers who had
    signed up, plus the active customers (`active_customers`) the CRM never listed.

    A customer the CRM lists with a later signup stays out even if active: the CRM is the
    authority on who is a customer, activity only fills in for customers it does not know.
    """
    return signed_up_before(crm, as_of).unionByName(unlisted(crm, active))


def recently_active(days: int) -> Column:
    """An order or a visit in the last `days` days before as_of (user_features columns): the
    opposite of churned, for churn labels and audiences."""
    order = F.coalesce(F.col("days_since_last_order") <= days, F.lit(False))
    visit = F.coalesce(F.col("days_since_last_visit") <= days, F.lit(False))
    return order | visit

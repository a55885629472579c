"""Campaign audiences + order lines -> per-group sums -> uplift, significance and ROI.

Pure DataFrame functions. The customer-level frames grow with audiences; everything after
`group_sums` is one row per (experiment, breakdown, breakdown value), so the statistics are
plain column arithmetic on a few hundred rows at most.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from precision_marketing import definitions
from precision_marketing.measure import stats
from precision_marketing.schemas.gold import CAMPAIGN_RESULTS
from precision_marketing.schemas.project import conform

TREATMENT = "treatment"
CONTROL = "control"
GROUPS = (TREATMENT, CONTROL)

OVERALL = "overall"
SEGMENT = "segment"
PROPENSITY_DECILE = "propensity_decile"
ALL = "all"  # breakdown_value of the overall rows
UNKNOWN = "unknown"  # breakdown_value of members without a segment or decile

# A campaign experiment: every send (publish run) of a campaign with the same window. A
# campaign dated absolutely sends on each run date of its window, all into one experiment; one
# dated relative to the run date has a window of its own per send, so each send is measured.
EXPERIMENT = ("campaign_id", "channel", "start_date", "end_date")
RUN_COLUMNS = (*EXPERIMENT, "run_id", "run_date", "cost_per_contact")


def ended_runs(campaign_runs: DataFrame, as_of: date, lookback_days: int | None) -> DataFrame:
    """The publish runs of campaign windows [start_date, end_date] that ended before `as_of`.

    Windows that ended within `lookback_days` (None: any time) are measured again on every run
    date: refunds keep arriving after the window, so the numbers settle over weeks.
    """
    ended = campaign_runs.where(F.col("end_date") < F.lit(as_of))
    if lookback_days is not None:
        ended = ended.where(F.col("end_date") >= F.lit(as_of - timedelta(days=lookback_days)))
    return ended.select(*RUN_COLUMNS)


def members(audiences: DataFrame, runs: DataFrame) -> DataFrame:
    """One row per member of each experiment of `runs`: treatment or control.

    Excluded customers (no group) are not part of the experiment. The control group is a stable
    hash of (campaign, customer), so a customer keeps their group across sends; one treated in
    any send is treated. `contacts` counts their treatment sends and `contact_cost` what those
    cost. Segment and decile are the ones of the customer's first send.
    """
    rows = (
        audiences.where(F.col("group").isin(*GROUPS))
        .select(
            "campaign_id", "run_id", "customer_id", "group", "segment_name", "propensity_decile"
        )
        .join(runs, ["campaign_id", "run_id"])
    )
    treated = F.col("group") == TREATMENT
    first = F.min_by(F.struct("segment_name", "propensity_decile"), F.col("run_date"))
    return (
        rows.groupBy(*EXPERIMENT, "customer_id")
        .agg(
            F.max(treated).alias("_treated"),
            F.sum(treated.cast("int")).cast("long").alias("contacts"),
            F.sum(F.when(treated, F.col("cost_per_contact")).otherwise(0.0)).alias("contact_cost"),
            first.alias("_first"),
        )
        .select(
            *EXPERIMENT,
            "customer_id",
            F.when(F.col("_treated"), F.lit(TREATMENT)).otherwise(F.lit(CONTROL)).alias("group"),
            "contacts",
            "contact_cost",
            F.col("_first.segment_name").alias("segment_name"),
            F.col("_first.propensity_decile").alias("propensity_decile"),
        )
    )


def sends(runs: DataFrame) -> DataFrame:
    """Per experiment, how many publish runs sent it."""
    return runs.groupBy(*EXPERIMENT).agg(F.count("run_id").alias("publish_runs"))


def member_outcomes(members: DataFrame, order_lines: DataFrame) -> DataFrame:
    """One row per member: converted (1 with a purchase, `definitions.net_purchase`, in the
    campaign window, else 0) and revenue (the net amount bought in the window, refunds and
    cancellations netted, summed in exact cents)."""
    lines = order_lines.select(
        F.col("customer_id").alias("_customer_id"),
        F.col("order_date").alias("_order_date"),
        definitions.net_purchase().alias("_purchase"),
        definitions.net_amount().alias("_net_amount"),
    )
    in_window = (F.col("customer_id") == F.col("_customer_id")) & F.col("_order_date").between(
        F.col("start_date"), F.col("end_date")
    )
    joined = members.join(lines, in_window, "left")
    return joined.groupBy(*members.columns).agg(
        F.coalesce(F.max(F.when(F.col("_purchase"), 1)), F.lit(0)).alias("converted"),
        F.coalesce(F.sum("_net_amount"), F.lit(0)).cast("double").alias("revenue"),
    )


def _breakdowns() -> Column:
    def entry(breakdown: str, value: Column) -> Column:
        return F.struct(F.lit(breakdown).alias("breakdown"), value.alias("breakdown_value"))

    return F.array(
        entry(OVERALL, F.lit(ALL)),
        entry(SEGMENT, F.coalesce(F.col("segment_name"), F.lit(UNKNOWN))),
        entry(
            PROPENSITY_DECILE,
            F.coalesce(F.col("propensity_decile").cast("string"), F.lit(UNKNOWN)),
        ),
    )


def group_sums(outcomes: DataFrame) -> DataFrame:
    """Per experiment and breakdown value, for each group: customers, conversions, revenue and
    revenue squared, plus the treatment's contacts and their cost, in one aggregation (each
    member counts once per breakdown)."""
    rows = outcomes.select("*", F.explode(_breakdowns()).alias("_b")).select(
        "*", "_b.breakdown", "_b.breakdown_value"
    )
    sums = []
    for g in GROUPS:
        member = F.col("group") == g
        sums += [
            F.sum(F.when(member, 1).otherwise(0)).cast("long").alias(f"{g}_customers"),
            F.sum(F.when(member, F.col("converted")).otherwise(0))
            .cast("long")
            .alias(f"{g}_conversions"),
            F.sum(F.when(member, F.col("revenue")).otherwise(0.0)).alias(f"{g}_revenue"),
            F.sum(F.when(member, F.col("revenue") * F.col("revenue")).otherwise(0.0)).alias(
                f"{g}_revenue_squares"
            ),
        ]
    sums += [
        F.sum("contacts").cast("long").alias("treatment_contacts"),
        F.sum("contact_cost").alias("campaign_cost"),
    ]
    return rows.groupBy(*EXPERIMENT, "breakdown", "breakdown_value").agg(*sums)


def results(
    sums: DataFrame, sends: DataFrame, as_of: date, measure_run_id: str, gross_margin: float
) -> DataFrame:
    """The statistics of every (experiment, breakdown, value) row of `group_sums`.

    Incremental conversions and revenue scale the per-customer uplift to the treatment group;
    the cost is what its contacts cost, and ROI weighs the incremental revenue by
    `gross_margin` (1.0: ROI on revenue) against it.
    """
    c = F.col
    n_t, n_c = c("treatment_customers"), c("control_customers")
    x_t, x_c = c("treatment_conversions"), c("control_conversions")
    conversion = stats.rate_difference(n_t, x_t, n_c, x_c)
    relative = stats.relative_uplift(n_t, x_t, n_c, x_c)
    revenue = stats.mean_difference(
        n_t,
        c("treatment_revenue"),
        c("treatment_revenue_squares"),
        n_c,
        c("control_revenue"),
        c("control_revenue_squares"),
    )
    incremental_revenue = revenue.interval.estimate * n_t
    out = sums.join(sends, list(EXPERIMENT)).select(
        F.lit(as_of).alias("as_of_date"),
        *EXPERIMENT,
        "publish_runs",
        "breakdown",
        "breakdown_value",
        n_t,
        n_c,
        x_t,
        x_c,
        stats.ratio(x_t, n_t).alias("treatment_conversion_rate"),
        stats.ratio(x_c, n_c).alias("control_conversion_rate"),
        "treatment_revenue",
        "control_revenue",
        stats.ratio(c("treatment_revenue"), n_t).alias("treatment_revenue_per_customer"),
        stats.ratio(c("control_revenue"), n_c).alias("control_revenue_per_customer"),
        conversion.interval.estimate.alias("conversion_uplift"),
        conversion.interval.low.alias("conversion_uplift_ci_low"),
        conversion.interval.high.alias("conversion_uplift_ci_high"),
        conversion.statistic.alias("conversion_z"),
        conversion.p_value.alias("conversion_p_value"),
        relative.estimate.alias("relative_uplift"),
        relative.low.alias("relative_uplift_ci_low"),
        relative.high.alias("relative_uplift_ci_high"),
        revenue.interval.estimate.alias("revenue_uplift_per_customer"),
        revenue.interval.low.alias("revenue_uplift_ci_low"),
        revenue.interval.high.alias("revenue_uplift_ci_high"),
        revenue.statistic.alias("revenue_t"),
        revenue.degrees_of_freedom.alias("revenue_df"),
        revenue.p_value.alias("revenue_p_value"),
        (conversion.interval.estimate * n_t).alias("incremental_conversions"),
        incremental_revenue.alias("incremental_revenue"),
        "treatment_contacts",
        stats.ratio(c("campaign_cost"), c("treatment_contacts")).alias("cost_per_contact"),
        "campaign_cost",
        F.lit(gross_margin).alias("gross_margin"),
        stats.roi(incremental_revenue, gross_margin, c("campaign_cost")).alias("roi"),
        F.lit(measure_run_id).alias("measure_run_id"),
    )
    return conform(out, CAMPAIGN_RESULTS)

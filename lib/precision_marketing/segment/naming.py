"""Readable segment names and one-line descriptions, derived by fixed rules from the profile.

A profile's `z` is how far the segment's mean of each model feature (in the model's prepared,
log-scaled space) lies from the population mean, in population standard deviations. The first
rule whose every condition holds names the segment; a rule that mentions a feature the model
does not use is skipped, so a shop without events never gets a name about visits. A profile no
rule names is called by the feature that sets it apart most ("Recent buyers", "Lower
spenders"). No hand labels: the same profile always gets the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (feature, ">=" or "<=", z threshold); "a|b" means the first of a, b the model uses.
Condition = tuple[str, str, float]
RECENCY = "days_since_last_order|days_since_last_visit"
# A condition that only asks for the feature to be in the model ("browsers" need visit data).
USED = float("-inf")

RULES: tuple[tuple[str, tuple[Condition, ...]], ...] = (
    (
        "Lapsing big spenders",
        (
            (RECENCY, ">=", 0.5),
            ("orders_lifetime", ">=", -0.25),
            ("spend_lifetime", ">=", 0.25),
        ),
    ),
    ("Lapsed customers", ((RECENCY, ">=", 0.5), ("orders_lifetime", ">=", -0.25))),
    (
        "New browsers",
        (("tenure_days", "<=", -1.0), ("orders_lifetime", "<=", 0.0), ("sessions", ">=", USED)),
    ),
    ("New customers", (("tenure_days", "<=", -1.0),)),
    ("High-value loyal", (("spend_lifetime", ">=", 0.75), ("orders_lifetime", ">=", 0.5))),
    ("Bargain hunters", (("discount_order_share", ">=", 0.75),)),
    ("Window shoppers", (("orders_lifetime", "<=", -0.75), ("sessions", ">=", -0.25))),
    ("Dormant contacts", (("orders_lifetime", "<=", -0.75),)),
    ("Occasional shoppers", (("orders_lifetime", "<=", -0.25),)),
    ("Big spenders", (("spend_lifetime", ">=", 0.5),)),
    ("Engaged subscribers", (("email_open_rate", ">=", 0.75),)),
)
FALLBACK = "Core customers"
# The name of a profile no rule fits, by its most distinguishing feature: (above, below) the
# population by at least FALLBACK_MIN_Z.
BY_FEATURE = {
    "days_since_last_order": ("Lapsing buyers", "Recent buyers"),
    "days_since_last_visit": ("Lapsing visitors", "Recent visitors"),
    "orders_lifetime": ("Frequent buyers", "Infrequent buyers"),
    "spend_lifetime": ("Higher spenders", "Lower spenders"),
    "tenure_days": ("Long-standing customers", "Newer customers"),
    "sessions": ("Frequent visitors", "Rare visitors"),
    "discount_order_share": ("Discount-driven buyers", "Full-price buyers"),
    "email_open_rate": ("Engaged subscribers", "Unengaged subscribers"),
}
FALLBACK_MIN_Z = 0.25

# Feature names as a description says them.
LABELS = {
    "days_since_last_order": "days since last order",
    "days_since_last_visit": "days since last visit",
    "tenure_days": "tenure",
    "orders_lifetime": "orders",
    "spend_lifetime": "spend",
    "avg_order_value": "order value",
    "lines_per_order": "lines per order",
    "discount_order_share": "discounted orders",
    "sessions": "visits",
    "sessions_30d": "recent visits",
    "email_open_rate": "email opens",
    "view_to_cart_rate": "view-to-cart rate",
    "campaign_click_rate": "campaign clicks",
    "refund_rate": "refunds",
}


@dataclass(frozen=True)
class Profile:
    """One cluster's summary: bounded by the number of features, built on the driver."""

    cluster: int
    size: int
    share: float
    means: dict[str, float | None]
    medians: dict[str, float | None]
    z: dict[str, float]


def _feature(z: dict[str, float], spec: str) -> str | None:
    return next((f for f in spec.split("|") if f in z), None)


def _holds(z: dict[str, float], condition: Condition) -> bool:
    spec, op, threshold = condition
    feature = _feature(z, spec)
    if feature is None:
        return False
    return z[feature] >= threshold if op == ">=" else z[feature] <= threshold


def rule_name(z: dict[str, float]) -> str:
    """The first rule all of whose conditions hold (a condition on an unused feature fails)."""
    for name, conditions in RULES:
        if all(_holds(z, c) for c in conditions):
            return name
    named = [(f, v) for f, v in z.items() if f in BY_FEATURE and abs(v) >= FALLBACK_MIN_Z]
    if not named:
        return FALLBACK
    feature, value = distinguishing(dict(named), 1)[0]
    above, below = BY_FEATURE[feature]
    return above if value > 0 else below


def distinguishing(z: dict[str, float], n: int) -> list[tuple[str, float]]:
    """The n features farthest from the population mean (ties: by name)."""
    return sorted(z.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:n]


def unique_names(names: Sequence[str], fixed: Sequence[bool] = ()) -> list[str]:
    """Numbers repeated names ("Core customers 2"); names in `fixed` positions keep theirs."""
    fixed = list(fixed) or [False] * len(names)
    taken = {n for n, f in zip(names, fixed, strict=True) if f}
    result = []
    for name, is_fixed in zip(names, fixed, strict=True):
        if is_fixed:
            result.append(name)
            continue
        candidate, number = name, 1
        while candidate in taken:
            number += 1
            candidate = f"{name} {number}"
        taken.add(candidate)
        result.append(candidate)
    return result


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2g}"


def describe(profile: Profile, top: Sequence[tuple[str, float]]) -> str:
    """One line: size, typical values, and what sets the segment apart."""
    m = profile.medians

    def known(feature: str) -> bool:
        # Only features the model used: a dropped one (no events: "0 visits") says nothing.
        return feature in m and feature in profile.z and m[feature] is not None

    typical = [
        f"median spend {_fmt(m['spend_lifetime'])}" if known("spend_lifetime") else "",
        f"{_fmt(m['orders_lifetime'])} orders" if known("orders_lifetime") else "",
        f"{_fmt(m['sessions'])} visits" if known("sessions") else "",
    ]
    apart = ", ".join(
        f"{'higher' if z > 0 else 'lower'} {LABELS.get(f, f.replace('_', ' '))} ({z:+.1f} sd)"
        for f, z in top
    )
    parts = [f"{profile.size:,} customers ({profile.share:.0%})", *(t for t in typical if t)]
    return "; ".join(parts) + (f"; stands out by {apart}" if apart else "") + "."

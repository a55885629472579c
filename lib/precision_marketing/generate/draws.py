"""Column helpers of the generator: hash-based draws, weighted picks, lookups, time text.

Randomness is hashing: every draw is `xxhash64(seed, tag, keys...)` turned into a uniform in
(0, 1), so a value depends only on the seed and the row's structural key (customer, order, line,
session, event number), never on partitioning or on the order in which rows are produced. Counts
are exploded with `sequence`, and items are picked by arithmetic on item indexes (item i is in
category i % 8), so nothing is ever a cross join of customers and items, and the frame of one
customer subset yields exactly the rows those customers have in the full data.

Internal frames carry times as epoch milliseconds (UTC) and render them only at the end, as
ISO-8601 text with the customer's fixed region offset, independent of the session time zone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from precision_marketing.generate import model as m
from precision_marketing.generate.model import DAY_MS, EPOCH, GenParams


def _c(value: Any) -> Column:
    return value if isinstance(value, Column) else F.lit(value)


class Draw:
    """Random numbers for one seed as Column expressions: a pure function of (tag, keys)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def hash(self, tag: str, *keys: Any) -> Column:
        return F.xxhash64(F.lit(self.seed), F.lit(tag), *(_c(k) for k in keys))

    def u(self, tag: str, *keys: Any) -> Column:
        """Uniform in (0, 1): the hash's top 52 bits, centred in their bucket."""
        bits = F.shiftrightunsigned(self.hash(tag, *keys), 12).cast("double")
        return (bits + 0.5) / float(2**52)

    def z(self, tag: str, *keys: Any) -> Column:
        """Standard normal (Box-Muller)."""
        r = F.sqrt(F.log(self.u(f"{tag}/r", *keys)) * -2.0)
        return r * F.cos(self.u(f"{tag}/a", *keys) * (2 * math.pi))

    def index(self, tag: str, n: Any, *keys: Any) -> Column:
        """Uniform integer in [0, n)."""
        return F.floor(self.u(tag, *keys) * _c(n)).cast("int")

    def hex16(self, tag: str, *keys: Any) -> Column:
        return F.lpad(F.lower(F.hex(self.hash(tag, *keys))), 16, "0")

    def uuid(self, tag: str, *keys: Any) -> Column:
        hi, lo = self.hex16(f"{tag}/hi", *keys), self.hex16(f"{tag}/lo", *keys)
        parts = [
            F.substring(hi, 1, 8),
            F.substring(hi, 9, 4),
            F.substring(hi, 13, 4),
            F.substring(lo, 1, 4),
            F.substring(lo, 5, 12),
        ]
        return F.concat_ws("-", *parts)


def sql_literal(value: Any) -> str:
    """A Spark SQL literal: doubles as 1.5D, longs as 7L, strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2**31) <= value < 2**31 else f"{value}L"
    if isinstance(value, float):
        return f"{value!r}D"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def array_of(values: Sequence[Any]) -> Column:
    """A constant array in one expression (one JVM call instead of one per element)."""
    return F.expr(f"array({', '.join(sql_literal(v) for v in values)})")


def lookup(values: Sequence[Any], index: Column) -> Column:
    """values[index] for a 0-based index column; null for a null index.

    The explicit null guard is needed: Spark 4.1's generated code for element_at on a
    literal array returned the last element, not null, for a null index.
    """
    return F.when(index.isNotNull(), F.element_at(array_of(values), (index + 1).cast("int")))


def pick(u: Column, weights: Sequence[float]) -> Column:
    """Index of the weighted choice that uniform `u` falls into (constant weights)."""
    total = sum(weights)
    cuts = list(accumulate(w / total for w in weights))[:-1]
    return sum((F.when(u >= cut, 1).otherwise(0) for cut in cuts), F.lit(0))


def pick_per_row(u: Column, cuts: Sequence[Column]) -> Column:
    """Index of the weighted choice with per-row cumulative cut points."""
    return sum((F.when(u >= cut, 1).otherwise(0) for cut in cuts), F.lit(0))


def pick_by_archetype(u: Column, attr: str, arch: Column) -> Column:
    """Weighted choice with the weights of each row's archetype (attribute `attr`)."""
    rows = [getattr(a, attr) for a in m.ARCHETYPES]
    cum = [list(accumulate(w / sum(ws) for w in ws)) for ws in rows]
    cuts = [lookup([c[k] for c in cum], arch) for k in range(len(rows[0]) - 1)]
    return pick_per_row(u, cuts)


def by_archetype(attr: str, arch: Column) -> Column:
    return lookup([getattr(a, attr) for a in m.ARCHETYPES], arch)


def choose_in_groups(groups: Sequence[Sequence[str]], group: Column, u: Column) -> Column:
    """A uniform element of groups[group], from one flat literal array."""
    flat = [v for g in groups for v in g]
    offsets = [0, *accumulate(len(g) for g in groups)][:-1]
    start = lookup(offsets, group)
    size = lookup([len(g) for g in groups], group)
    return F.element_at(array_of(flat), (start + F.floor(u * size) + 1).cast("int"))


def geometric(mean: Any, u: Column) -> Column:
    """Failures before the first success, with the given mean (> 0)."""
    mean_c = _c(mean)
    return F.floor(F.log(u) / F.log(mean_c / (mean_c + 1.0))).cast("int")


def poisson(mu: Column, u: Column, z: Column) -> Column:
    """Poisson(mu): exact inverse CDF below mu = 30, the normal approximation above."""
    kmax = F.ceil(mu + F.sqrt(mu) * 6.0 + 6.0).cast("int")
    start = F.struct(F.lit(0).alias("k"), F.exp(-mu).alias("p"), F.exp(-mu).alias("c"))

    def step(acc: Column, k: Column) -> Column:
        p = acc["p"] * mu / k
        return F.when(
            acc["c"] < u, F.struct(k.alias("k"), p.alias("p"), (acc["c"] + p).alias("c"))
        ).otherwise(acc)

    exact = F.aggregate(F.sequence(F.lit(1), kmax), start, step)["k"]
    normal = F.greatest(F.round(mu + F.sqrt(mu) * z), F.lit(0.0)).cast("int")
    return F.when(mu < 30.0, exact).otherwise(normal)


def approx_poisson(mu: Column, z: Column) -> Column:
    """Rounded normal approximation: good enough for browsing volumes, and cheap."""
    return F.greatest(F.floor(mu + F.sqrt(mu) * z + 0.5), F.lit(0)).cast("int")


def padded(number: Column, width: int) -> Column:
    """A non-negative integer as zero-padded text (format_string costs ~1 µs a call)."""
    return F.lpad(number.cast("long").cast("string"), width, "0")


def offset_text(offset_min: Column) -> Column:
    """'+01:00' for 60 minutes east of UTC."""
    sign = F.when(offset_min < 0, "-").otherwise("+")
    minutes = F.abs(offset_min)
    return F.concat(sign, padded(F.floor(minutes / 60), 2), F.lit(":"), padded(minutes % 60, 2))


def day_text(day: Column) -> Column:
    """Days since 1970-01-01 as YYYY-MM-DD."""
    return F.date_add(F.lit(EPOCH), day.cast("int")).cast("string")


def time_text(ms: Column, offset_min: Column) -> Column:
    """Epoch milliseconds as ISO-8601 local time with a fixed offset, e.g. ...T14:22:31.123+01:00.

    Pure arithmetic, so the text never depends on spark.sql.session.timeZone.
    """
    local = ms + offset_min.cast("long") * 60_000
    day = F.floor(local / DAY_MS)
    in_day = (local - day * DAY_MS).cast("int")
    return F.concat(
        day_text(day),
        F.lit("T"),
        padded(F.floor(in_day / 3_600_000), 2),
        F.lit(":"),
        padded(F.floor(in_day / 60_000) % 60, 2),
        F.lit(":"),
        padded(F.floor(in_day / 1000) % 60, 2),
        F.lit("."),
        padded(in_day % 1000, 3),
        offset_text(offset_min),
    )


def ms_day(ms: Column) -> Column:
    return F.floor(ms / DAY_MS)


def period(ms: Column, p: GenParams, n: int) -> Column:
    """'01'..'n': which of n equal slices of the history window `ms` falls in (clamped)."""
    width = p.days * DAY_MS / n
    index = F.least(
        F.greatest(F.floor((ms - p.start_day * DAY_MS) / width), F.lit(0)), F.lit(n - 1)
    )
    return lookup([f"{i:02d}" for i in range(1, n + 1)], index)


def week_label(ms: Column) -> Column:
    """'2026w23': the ISO week of the day `ms` falls on (UTC)."""
    date = F.date_add(F.lit(EPOCH), ms_day(ms).cast("int"))
    return F.concat(F.year(date).cast("string"), F.lit("w"), padded(F.weekofyear(date), 2))


def typed_null(dtype: str = "string") -> Column:
    return F.lit(None).cast(dtype)

"""Expectation suites as data (conf/expectations/<table>.yaml) and the row predicates behind them.

Great Expectations reports counts and samples per expectation, not which rows failed. To split a
batch into good and quarantined rows, each row-level expectation is also turned into a Spark
predicate here, from the very same rule, so GE's unexpected_count and the quarantine agree (the
validate job records both and flags any disagreement). Uniqueness is the exception: it is judged
across rows, cannot quarantine, and only GE counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import reduce
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from precision_marketing.config import ConfigError, from_dict

CORRUPT_COLUMN = "_corrupt_record"
# Fields whose value did not fit the contract's type or length (ingest names them).
INVALID_COLUMN = "_invalid_fields"
WELL_FORMED = f"{CORRUPT_COLUMN} IS NULL"


class Severity(StrEnum):
    WARN = "warn"
    QUARANTINE = "quarantine"
    FAIL = "fail"


@dataclass(frozen=True)
class Reference:
    """A flag column, true when `column` is null or found in bronze `table`.`key` (and each
    `also` column in its paired key; only lookup rows where `where` holds)."""

    column: str
    table: str
    key: str
    also: dict[str, str] = field(default_factory=dict)
    where: str | None = None


@dataclass(frozen=True)
class Conflict:
    """A flag column, true unless the batch holds another row of the same key (Spark SQL
    expressions, e.g. _batch_no first to judge each ingest batch alone; a null part means no
    key) with different contract fields. Exact copies agree.

    With `earlier`, the other rows are those of batches validated before (well-formed ones):
    a key re-sent later with other content is a correction or a conflict, never silent.
    """

    keys: list[str]
    earlier: bool = False


@dataclass(frozen=True)
class Rule:
    rule: str
    expectation: str
    severity: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # Spark SQL condition: the rule looks only at rows where it holds.
    row_condition: str | None = None
    # Fill min/max of a row-count expectation from the previous batch's count.
    compare_to_previous_run: bool = False

    @property
    def level(self) -> Severity:
        return Severity(self.severity)

    @property
    def is_row_level(self) -> bool:
        """GE counts this rule's unexpected rows (a row-level, not a table-level, expectation)."""
        return self.expectation in ROW_PREDICATES or self.expectation in WHOLE_BATCH_EXPECTATIONS

    @property
    def has_row_predicate(self) -> bool:
        """validate flags the rows that break this rule itself (so it can quarantine them)."""
        return self.expectation in ROW_PREDICATES

    @property
    def checks_well_formedness(self) -> bool:
        """A rule on how the row parsed (it looks at rows whose raw text did not parse too)."""
        return self.kwargs.get("column") in (CORRUPT_COLUMN, INVALID_COLUMN)

    def effective_row_condition(self) -> str | None:
        """Rows whose raw text did not parse break only the well-formedness rule."""
        if self.checks_well_formedness or not self.is_row_level:
            return self.row_condition
        if self.row_condition:
            return f"({WELL_FORMED}) AND ({self.row_condition})"
        return WELL_FORMED


@dataclass(frozen=True)
class Suite:
    table: str
    expectations: list[Rule]
    references: dict[str, Reference] = field(default_factory=dict)
    conflicts: dict[str, Conflict] = field(default_factory=dict)

    def rules(self, severity: Severity) -> list[Rule]:
        return [r for r in self.expectations if r.level is severity]


def load_suite(directory: Path, table: str) -> Suite:
    path = directory / f"{table}.yaml"
    if not path.is_file():
        raise ConfigError(f"no expectation suite for table '{table}' at {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        suite = from_dict(Suite, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    _check(suite, path)
    return suite


def _check(suite: Suite, path: Path) -> None:
    names = [r.rule for r in suite.expectations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: rule '{duplicates[0]}' is defined twice")
    for rule in suite.expectations:
        where = f"{path}: rule '{rule.rule}'"
        if rule.severity not in Severity.__members__.values():
            raise ConfigError(f"{where}: severity must be warn, quarantine or fail")
        if rule.level is Severity.QUARANTINE and rule.expectation in WHOLE_BATCH_EXPECTATIONS:
            raise ConfigError(f"{where}: {rule.expectation} would quarantine every copy")
        if rule.level is Severity.QUARANTINE and not rule.has_row_predicate:
            raise ConfigError(
                f"{where}: only row-level expectations ({', '.join(sorted(ROW_PREDICATES))}) "
                "can quarantine rows"
            )
    if not any(
        r.kwargs.get("column") == CORRUPT_COLUMN and r.level is not Severity.WARN
        for r in suite.expectations
    ):
        raise ConfigError(
            f"{path}: a quarantine or fail rule on {CORRUPT_COLUMN} is required, so rows "
            "that did not parse can never reach silver"
        )


def resolve(value: Any, params: dict[str, Any]) -> Any:
    """Fills ${name} placeholders (run_date, run_started_at, accepted_currencies) in rule
    arguments; a placeholder is a whole value (`value_set: ${accepted_currencies}` is a list)."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        name = value[2:-1]
        if name not in params:
            raise ConfigError(f"unknown placeholder {value} (known: {', '.join(sorted(params))})")
        return params[name]
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    return value


def run_params(
    run_date: date, run_started_at: datetime, accepted_currencies: list[str] | None = None
) -> dict[str, Any]:
    """Values a suite may name as ${...}; currencies come from config (`currency`)."""
    return {
        "run_date": run_date.isoformat(),
        "run_started_at": run_started_at.strftime("%Y-%m-%d %H:%M:%S"),
        "accepted_currencies": list(accepted_currencies or ["EUR"]),
    }


def _bound(value: Any) -> Column:
    return F.lit(value)


def _between(column: Column, kwargs: dict[str, Any]) -> Column:
    too_low = F.lit(False)
    too_high = F.lit(False)
    if kwargs.get("min_value") is not None:
        low = _bound(kwargs["min_value"])
        too_low = column <= low if kwargs.get("strict_min") else column < low
    if kwargs.get("max_value") is not None:
        high = _bound(kwargs["max_value"])
        too_high = column >= high if kwargs.get("strict_max") else column > high
    return column.isNotNull() & (too_low | too_high)


# expectation -> (column, kwargs) -> "this row violates it". Null handling mirrors GE: only
# not_be_null counts nulls as unexpected.
ROW_PREDICATES: dict[str, Any] = {
    "expect_column_values_to_not_be_null": lambda c, kw: c.isNull(),
    "expect_column_values_to_be_null": lambda c, kw: c.isNotNull(),
    "expect_column_values_to_be_in_set": lambda c, kw: (
        c.isNotNull() & ~c.isin(list(kw["value_set"]))
    ),
    "expect_column_values_to_not_be_in_set": lambda c, kw: (
        c.isNotNull() & c.isin(list(kw["value_set"]))
    ),
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_match_regex": lambda c, kw: c.isNotNull() & ~c.rlike(kw["regex"]),
    "expect_column_values_to_not_match_regex": lambda c, kw: c.isNotNull() & c.rlike(kw["regex"]),
    "expect_column_value_lengths_to_be_between": lambda c, kw: _between(F.length(c), kw),
}
# Row-level in GE but judged across rows: GE alone counts them (they cannot quarantine, as every
# copy breaks the rule). Flagging them per row too cost a shuffle of the whole batch: dropping
# that flag made validate's cached batch 25% cheaper to build at 100,000 customers.
WHOLE_BATCH_EXPECTATIONS = {"expect_column_values_to_be_unique"}


def violation(rule: Rule, params: dict[str, Any]) -> Column:
    """True where a row breaks `rule` (row-level rules only)."""
    kwargs = {k: resolve(v, params) for k, v in rule.kwargs.items()}
    broken: Column = ROW_PREDICATES[rule.expectation](F.col(kwargs["column"]), kwargs)
    condition = rule.effective_row_condition()
    if condition:
        broken = F.expr(condition) & broken
    return F.coalesce(broken, F.lit(False))


def with_reference_flags(
    df: DataFrame,
    suite: Suite,
    lookups: dict[str, DataFrame],
    unchecked: frozenset[str] = frozenset(),
) -> DataFrame:
    """Adds one boolean column per suite reference (e.g. customer_known) via a left join.

    A reference into a table in `unchecked` (a source that never had a row, e.g. no CRM) holds
    for every row: with nothing to look in, quarantining every row would lose the whole table.
    """
    for flag, ref in suite.references.items():
        if ref.table in unchecked:
            df = df.withColumn(flag, F.lit(True))
            continue
        pairs = {ref.column: ref.key, **ref.also}
        lookup = lookups[ref.table].where(ref.where) if ref.where else lookups[ref.table]
        keys = (
            lookup.select(*[F.col(k).alias(f"_{flag}_{i}") for i, k in enumerate(pairs.values())])
            .where(F.col(f"_{flag}_0").isNotNull())
            .distinct()
            .withColumn(f"_{flag}_found", F.lit(True))
        )
        match = F.lit(True)
        for i, column in enumerate(pairs):
            match = match & (F.col(column) == F.col(f"_{flag}_{i}"))
        df = (
            df.join(keys, match, "left")
            .withColumn(flag, F.col(ref.column).isNull() | F.col(f"_{flag}_found").isNotNull())
            .drop(*[f"_{flag}_{i}" for i in range(len(pairs))], f"_{flag}_found")
        )
    return df


# In-batch conflicts: up to this many differing keys come back to the driver and flag rows as
# a set of literals; a batch with more (mostly conflicting copies) is judged by a window.
MAX_COLLECTED_CONFLICTS = 10_000


def with_conflict_flags(
    df: DataFrame,
    suite: Suite,
    fields: list[str],
    earlier: DataFrame | None = None,
    broadcast_keys: bool = False,
    max_collected: int = MAX_COLLECTED_CONFLICTS,
) -> DataFrame:
    """Adds one boolean column per suite conflict: false on every row of a key whose rows in
    the batch (or, for an `earlier` conflict, in the `earlier` batches) differ in any of
    `fields` (the contract's), so no copy silently wins.

    `broadcast_keys` (a batch small enough to send its keys to every task): the earlier
    batches are only scanned for the batch's keys instead of being aggregated as a whole, so a
    daily batch costs a scan of the history, not a shuffle of it. An in-batch conflict runs one
    aggregation job (`_with_batch_conflict_flag`)."""
    content = F.xxhash64(*[F.col(f) for f in fields])
    for flag, conflict in suite.conflicts.items():
        keys = [F.expr(k) for k in conflict.keys]
        if conflict.earlier:
            df = _with_earlier_conflict_flag(df, flag, keys, content, earlier, broadcast_keys)
        else:
            df = _with_batch_conflict_flag(df, flag, keys, content, max_collected)
    return df


def _with_batch_conflict_flag(
    df: DataFrame, flag: str, keys: list[Column], content: Column, max_collected: int
) -> DataFrame:
    """Finds the keys whose copies differ with a narrow aggregate (keys and a content hash,
    no sort), where a window would shuffle and sort every whole row; usually there are none
    and the flag is a constant. Found keys flag their rows by hash, confirmed by the keys'
    exact text; past `max_collected` of them, the window judges."""
    keyed = reduce(Column.__and__, [k.isNotNull() for k in keys], F.lit(True))
    names = [f"_{flag}_k{i}" for i in range(len(keys))]

    def key_text(parts: list[Column]) -> Column:
        return F.to_json(
            F.struct(*[p.cast("string").alias(n) for p, n in zip(parts, names, strict=True)])
        )

    differing = (
        df.where(keyed)
        .select(*[k.alias(n) for k, n in zip(keys, names, strict=True)], content.alias("_content"))
        .groupBy(*names)
        .agg((F.min("_content") != F.max("_content")).alias("_differs"))
        .where("_differs")
        .select(
            F.xxhash64(*[F.col(n) for n in names]).alias("hash"),
            key_text([F.col(n) for n in names]).alias("text"),
        )
        .limit(max_collected + 1)
        .collect()  # bounded: at most max_collected + 1 short rows
    )
    if len(differing) > max_collected:
        window = Window.partitionBy(*keys)
        return df.withColumn(
            flag, ~(keyed & (F.min(content).over(window) != F.max(content).over(window)))
        )
    if not differing:
        return df.withColumn(flag, F.lit(True))
    found = (
        keyed
        & F.xxhash64(*keys).isin([r["hash"] for r in differing])
        & key_text(keys).isin([r["text"] for r in differing])
    )
    return df.withColumn(flag, ~found)


def _with_earlier_conflict_flag(
    df: DataFrame,
    flag: str,
    keys: list[Column],
    content: Column,
    earlier: DataFrame | None,
    broadcast_keys: bool,
) -> DataFrame:
    if earlier is None:
        return df.withColumn(flag, F.lit(True))
    names = [f"_{flag}_k{i}" for i in range(len(keys))]
    keyed = reduce(Column.__and__, [k.isNotNull() for k in keys], F.lit(True))
    named = [k.alias(n) for k, n in zip(keys, names, strict=True)]
    earlier = earlier.where(keyed).select(*named, content.alias(f"_{flag}_content"))
    if broadcast_keys:
        batch_keys = df.where(keyed).select(*named).distinct()
        earlier = earlier.join(F.broadcast(batch_keys), names, "left_semi")
    hashed = F.col(f"_{flag}_content")
    before = earlier.groupBy(*names).agg(
        F.min(hashed).alias(f"_{flag}_lo"), F.max(hashed).alias(f"_{flag}_hi")
    )
    match = reduce(
        Column.__and__, [k == F.col(n) for k, n in zip(keys, names, strict=True)], F.lit(True)
    )
    lo, hi = F.col(f"_{flag}_lo"), F.col(f"_{flag}_hi")
    return (
        df.join(before, match, "left")
        .withColumn(flag, lo.isNull() | ((lo == content) & (hi == content)))
        .drop(*names, f"_{flag}_lo", f"_{flag}_hi")
    )


def any_true(columns: list[Column]) -> Column:
    return reduce(Column.__or__, columns, F.lit(False))

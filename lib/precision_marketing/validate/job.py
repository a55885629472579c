"""validate: each bronze table's new batches against its suite -> quarantine, results, Data Docs.

Severities: `warn` is recorded; `quarantine` moves the rows that break it to quarantine/<table>
with the names of every rule they broke (the other rows go on to silver); `fail` stops the run.
On a `fail`, only ops/validation_results is written (so the failure is on record): no quarantine,
and no table's validated mark moves, so silver cannot pick the batch up.

The audit trail is part of the commit: results are MERGEd on (table, batch_from, batch_to, rule)
before any quarantine write or mark moves, so a run that dies anywhere and is rerun leaves one
record per batch and rule, as a clean run would (the rerun validates the unmarked batches again
and its verdict replaces the dead run's; docs/reruns.md).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.conform import TYPED
from precision_marketing.contracts import SOURCES
from precision_marketing.ingest.job import last_committed_batch
from precision_marketing.ingest.read import bronze_schema
from precision_marketing.io import tables, watermarks
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import DataQualityError, JobContext, kill_point, step
from precision_marketing.schemas.ops import VALIDATION_RESULTS as RESULTS_SCHEMA
from precision_marketing.validate import suites
from precision_marketing.validate.expectations import Outcome, Validator
from precision_marketing.validate.suites import Rule, Severity, Suite

log = logging.getLogger(__name__)

# Rules on a set of values: a stop lists the values that broke them.
SET_EXPECTATIONS = ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set")
# Reference tables are validated first, so their keys are known to the tables that point at them.
VALIDATION_ORDER = ("catalog", "crm", "transactions", "events")

# A batch of up to this many rows sends its keys to every task (tens of MB at most) to look up
# earlier batches; a larger one (a backfill) is joined with them by a shuffle.
BROADCAST_BATCH_ROWS = 2_000_000

# One record per validated batch range and rule: the MERGE key of ops/validation_results.
RESULTS_KEY = ("table", "batch_from", "batch_to", "rule")


@dataclass(frozen=True)
class TableValidation:
    table: str
    rules: list[Rule]
    batch_from: int
    batch_to: int
    rows: int
    outcomes: list[Outcome]
    rows_broken: dict[str, int]
    quarantined: DataFrame
    quarantined_rows: int
    failures: list[str]

    @property
    def status(self) -> str:
        if self.failures:
            return "failed"
        if self.quarantined_rows:
            return "quarantined"
        if not all(o.success for o in self.outcomes):
            return "warned"
        return "passed"


def run(ctx: JobContext) -> None:
    config = ctx.config
    docs_dir = _docs_dir(ctx) if config.validate.data_docs else None
    validator = Validator(docs_dir, config.validate.sample_size)
    params = suites.run_params(ctx.run_date, ctx.started_at, config.currency.accepted())
    lookups = {name: _bronze(ctx, name) for name in SOURCES}
    unchecked = _empty_references(config, lookups)

    validations: list[TableValidation] = []
    cached: list[DataFrame] = []
    try:
        for table in VALIDATION_ORDER:
            suite = suites.load_suite(config.expectations_path(), table)
            with step(log, f"validate {table}") as s:
                validation = _validate_table(
                    ctx, validator, suite, params, lookups, unchecked, cached
                )
                if validation is None:
                    s.rows(new_batches=0)
                    continue
                validations.append(validation)
                s.rows(
                    rows=validation.rows,
                    quarantined=validation.quarantined_rows,
                    failed_rules=len(validation.failures),
                )
        if any(v.outcomes for v in validations):
            _record_results(ctx, validations)
        kill_point("validate:results-written")
        failures = [f for v in validations for f in v.failures]
        if not failures:
            # Results stay on record whatever happens; quarantine and marks move together.
            written = [watermarks.path(config)] + [
                tables.table_path(config, Layer.QUARANTINE, v.table) for v in validations
            ]
            with tables.restored_on_failure(ctx.spark, written):
                for validation in validations:
                    _quarantine(ctx, validation)
        if docs_dir and any(v.outcomes for v in validations):
            log.info("data docs: %s", validator.build_docs())
        if failures:
            raise DataQualityError("; ".join(failures))
    finally:
        for df in cached:
            df.unpersist()


def _docs_dir(ctx: JobContext) -> str | None:
    path = tables.reports_path(ctx.config, "validate", ctx.run_id, "data_docs")
    if path.startswith("/") or path.startswith("file:"):
        return path.removeprefix("file:")
    log.warning("data docs are written to local disk only; skipped for %s", path)
    return None


def _empty_references(config: Config, lookups: dict[str, DataFrame]) -> frozenset[str]:
    """Referenced sources that have no rows at all: their references are not checked."""
    referenced = {
        ref.table
        for table in VALIDATION_ORDER
        for ref in suites.load_suite(config.expectations_path(), table).references.values()
    }
    empty = frozenset(t for t in sorted(referenced) if lookups[t].isEmpty())
    for table in sorted(empty):
        log.warning("%s has no rows: references to it are not checked", table)
    return empty


def _bronze(ctx: JobContext, table: str) -> DataFrame:
    """The bronze table, or no rows before its source's first file has landed."""
    path = tables.table_path(ctx.config, Layer.BRONZE, table)
    return tables.read_or_empty(ctx.spark, path, bronze_schema(SOURCES[table]))


def _earlier_rows(bronze: DataFrame, table: str, done: int) -> DataFrame | None:
    """The well-formed rows of the batches validated before this run (None: there are none)."""
    if done < 1:
        return None
    earlier = bronze.where(
        (F.col("_batch_no") <= done)
        & F.col(suites.CORRUPT_COLUMN).isNull()
        & F.col(suites.INVALID_COLUMN).isNull()
    )
    return TYPED[table](earlier)


def _validate_table(
    ctx: JobContext,
    validator: Validator,
    suite: Suite,
    params: dict[str, Any],
    lookups: dict[str, DataFrame],
    unchecked: frozenset[str],
    cached: list[DataFrame],
) -> TableValidation | None:
    spark, config = ctx.spark, ctx.config
    done = watermarks.get(spark, config, "validate", suite.table)
    bronze = lookups[suite.table]
    # From the commits, not the rows: a batch of empty files has no rows but must be passed.
    latest = last_committed_batch(spark, tables.table_path(config, Layer.BRONZE, suite.table))
    if latest <= done:
        return None
    batch = bronze.where(F.col("_batch_no").between(done + 1, latest))
    if batch.isEmpty():
        log.warning(
            "%s: batches %d..%d hold no rows: passed as an empty batch",
            suite.table,
            done + 1,
            latest,
        )
        return TableValidation(suite.table, [], done + 1, latest, 0, [], {}, batch, 0, [])
    rules = [_with_previous_count(ctx, suite.table, done, r) for r in suite.expectations]
    suite = dataclasses.replace(suite, expectations=rules)
    # One flag column per rule with a row predicate, computed once on the cached batch and shared
    # by the counts, the quarantine split and (as extra columns it ignores) Great Expectations.
    # Whole-batch rules (uniqueness) have no flag: their row counts are Great Expectations'.
    row_rules = {f"_broken_{i}": r for i, r in enumerate(r for r in rules if r.has_row_predicate)}
    earlier = _earlier_rows(bronze, suite.table, done)
    typed = (
        suites.with_conflict_flags(
            TYPED[suite.table](batch),
            suite,
            SOURCES[suite.table].schema.fieldNames(),
            earlier,
            broadcast_keys=earlier is not None and batch.count() <= BROADCAST_BATCH_ROWS,
        )
        .transform(suites.with_reference_flags, suite, lookups, unchecked)
        .withColumns({flag: suites.violation(r, params) for flag, r in row_rules.items()})
        .cache()
    )
    cached.append(typed)
    outcomes = validator.validate(suite, typed, params)

    quarantine_flags = {f: r for f, r in row_rules.items() if r.level is Severity.QUARANTINE}
    quarantine_any = suites.any_true([F.col(flag) for flag in quarantine_flags])
    counts_row = typed.select(
        F.count(F.lit(1)).alias("_rows"),
        F.sum(quarantine_any.cast("long")).alias("_quarantined"),
        *[F.sum(F.col(flag).cast("long")).alias(flag) for flag in row_rules],
    ).first()
    assert counts_row is not None
    rows_broken = {r.rule: int(counts_row[flag] or 0) for flag, r in row_rules.items()}
    _check_agreement(suite.table, outcomes, rows_broken)

    failed_rules = F.filter(
        F.array(*[F.when(F.col(flag), F.lit(r.rule)) for flag, r in quarantine_flags.items()]),
        lambda name: name.isNotNull(),
    )
    quarantined = typed.where(quarantine_any).select(
        *bronze.columns,
        failed_rules.alias("_failed_rules"),
        F.lit(ctx.run_id).alias("_validation_run_id"),
        F.current_timestamp().alias("_quarantined_at"),
    )
    by_rule = {o.rule: o for o in outcomes}
    flag_of = {r.rule: flag for flag, r in row_rules.items()}
    failures = [
        _failure_message(suite.table, r, by_rule[r.rule], rows_broken.get(r.rule))
        + _broken_values(typed, r, flag_of.get(r.rule))
        for r in suite.rules(Severity.FAIL)
        if not by_rule[r.rule].success
    ]
    rows = int(counts_row["_rows"])
    quarantine_broken = {r.rule: rows_broken[r.rule] for r in quarantine_flags.values()}
    share = config.validate.max_quarantine_share
    failures += _overwhelming(suite.table, rows, quarantine_broken, share)
    return TableValidation(
        table=suite.table,
        rules=rules,
        batch_from=done + 1,
        batch_to=latest,
        rows=rows,
        outcomes=outcomes,
        rows_broken=rows_broken,
        quarantined=quarantined,
        quarantined_rows=int(counts_row["_quarantined"] or 0),
        failures=failures,
    )


def _with_previous_count(ctx: JobContext, table: str, done: int, rule: Rule) -> Rule:
    """Row-count rules compare with the last validated batch's row count (none: no bounds)."""
    if not rule.compare_to_previous_run:
        return rule
    change = ctx.config.validate.row_count_change
    previous = _previous_row_count(ctx, table, done)
    kwargs = dict(rule.kwargs)
    if previous is not None:
        kwargs["min_value"] = math.floor(previous * (1 - change.max_drop))
        kwargs["max_value"] = math.ceil(previous * (1 + change.max_growth))
    else:
        kwargs["min_value"] = 0
    return dataclasses.replace(rule, kwargs=kwargs)


def _previous_row_count(ctx: JobContext, table: str, done: int) -> int | None:
    """The row count of the latest batch range up to `done` (the validated mark): a record a
    dead run left for the batches being validated now is no "previous" batch."""
    path = tables.table_path(ctx.config, Layer.OPS, "validation_results")
    if not tables.is_delta(ctx.spark, path):
        return None
    row = (
        tables.read(ctx.spark, path)
        .where(
            (F.col("table") == table)
            & (F.col("batch_to") <= done)
            & (F.col("expectation") == "expect_table_row_count_to_be_between")
            & (F.col("table_status") != "failed")
        )
        .orderBy(F.col("batch_to").desc(), F.col("validated_at").desc())
        .select("observed_value")
        .first()
    )
    return int(float(row[0])) if row and row[0] is not None else None


def _check_agreement(table: str, outcomes: list[Outcome], rows_broken: dict[str, int]) -> None:
    for outcome in outcomes:
        ours = rows_broken.get(outcome.rule)
        if ours is not None and outcome.unexpected_count not in (None, ours):
            log.warning(
                "%s.%s: Great Expectations counted %d unexpected rows, the quarantine predicate %d",
                table,
                outcome.rule,
                outcome.unexpected_count,
                ours,
            )


def _overwhelming(
    table: str, rows: int, rows_broken: dict[str, int], max_share: float | None
) -> list[str]:
    """Quarantine rules broken by more than `max_share` of the batch: a stop, since so many bad
    rows usually mean the export is read wrongly (a column mapped to the wrong field, a
    timestamp format or zone that does not match) rather than that the data is bad."""
    if max_share is None or rows == 0:
        return []
    return [
        f"table '{table}' rule '{rule}' would quarantine {broken} of {rows} rows "
        f"({broken / rows:.0%}, over validate.max_quarantine_share {max_share}): check the "
        "source's mapping in sources.yaml (columns, timestamp_format, time_zone) or raise the share"
        for rule, broken in sorted(rows_broken.items())
        if broken > max_share * rows
    ]


def _failure_message(table: str, rule: Rule, outcome: Outcome, broken: int | None) -> str:
    if outcome.error:
        detail = f"error: {outcome.error}"
    elif broken is not None:
        detail = f"{broken} of {outcome.element_count} rows unexpected"
    else:
        detail = f"observed {outcome.observed_value}"
    return f"table '{table}' expectation '{rule.rule}' ({rule.expectation}) failed: {detail}"


def _broken_values(typed: DataFrame, rule: Rule, flag: str | None, shown: int = 5) -> str:
    """The commonest values behind a failed set rule, with their counts (e.g. `JPY (3 rows)`):
    a stop names what to fix. Runs only when a `fail` rule failed."""
    column = rule.kwargs.get("column")
    if flag is None or rule.expectation not in SET_EXPECTATIONS or column not in typed.columns:
        return ""
    top = (
        typed.where(F.col(flag))
        .groupBy(F.col(column).cast("string").alias("value"))
        .count()
        .orderBy(F.col("count").desc(), "value")
        .limit(shown)
        .collect()  # bounded: the `shown` most frequent broken values
    )
    return "; values: " + ", ".join(f"{r['value']} ({r['count']} rows)" for r in top)


def _record_results(ctx: JobContext, validations: list[TableValidation]) -> None:
    now = datetime.now(UTC)
    rows = []
    for v in validations:
        rules = {r.rule: r for r in v.rules}
        for o in v.outcomes:
            rule = rules[o.rule]
            rows.append(
                (
                    ctx.run_id,
                    ctx.run_date,
                    now,
                    v.table,
                    v.batch_from,
                    v.batch_to,
                    o.rule,
                    rule.expectation,
                    rule.severity,
                    o.success,
                    o.element_count,
                    o.unexpected_count,
                    o.unexpected_percent,
                    o.observed_value,
                    o.sample,
                    v.rows_broken.get(o.rule),
                    o.error,
                    v.status,
                )
            )
    path = tables.table_path(ctx.config, Layer.OPS, "validation_results")
    # A MERGE, not an append: the verdict of a rerun on the same batches replaces the one a
    # dead or failed run left, so the table holds one record per batch and rule.
    tables.upsert(ctx.spark, ctx.spark.createDataFrame(rows, RESULTS_SCHEMA), path, RESULTS_KEY)


def _quarantine(ctx: JobContext, validation: TableValidation) -> None:
    """Quarantine rows (idempotently per batch range), then advance the validated mark."""
    if validation.quarantined_rows:
        tables.append(
            validation.quarantined,
            tables.table_path(ctx.config, Layer.QUARANTINE, validation.table),
            txn=(f"validate/{validation.table}", validation.batch_to),
            merge_schema=True,  # a quarantine table from before _invalid_fields gains it
        )
    kill_point(f"validate:quarantined-{validation.table}")
    watermarks.advance(
        ctx.spark, ctx.config, "validate", validation.table, validation.batch_to, ctx.run_id
    )
    kill_point(f"validate:marked-{validation.table}")

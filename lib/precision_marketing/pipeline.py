"""pipeline: the configured stages in order, in one Spark application, resumable per run date.

One application pays Spark's start-up cost once instead of once per stage; each stage is the
same code its own job runs. Every step's outcome goes to ops/pipeline_runs, so when an attempt
for a run date failed at step k, the next attempt skips the steps before k (their outputs are
in place) and starts there. A fully successful attempt is followed by a full rerun: every
stage is idempotent. A stage whose required inputs are absent or empty (requirements.py) does
not fail the run: it is recorded as `no_input` with the reason, and later stages that need its
output find their own inputs missing the same way. The run ends with its result, a short
summary, on stdout (pipeline_summary.py); the log lines go to stderr.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config, ConfigError
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import JobContext, MissingInputError
from precision_marketing.schemas.ops import PIPELINE_RUNS as RUNS_SCHEMA

log = logging.getLogger(__name__)

RUNS = "pipeline_runs"
MAX_ERROR_CHARS = 2000


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    NO_INPUT = "no_input"  # its required inputs were absent or empty: nothing to do, not a fault


# Statuses a resumed attempt does not run again.
DONE = frozenset({Status.SUCCEEDED.value, Status.SKIPPED.value, Status.NO_INPUT.value})


@dataclass(frozen=True)
class Outcome:
    step: str
    status: Status
    started_at: datetime
    finished_at: datetime
    seconds: float
    error: str | None = None


def first_step(
    steps: Sequence[str],
    previous: dict[str, str] | None,
    from_step: str | None = None,
    resume: bool = True,
) -> int:
    """Index of the step to start at.

    `previous` is the latest earlier attempt for the run date (step -> status). If any of the
    configured steps did not get through it (failed, or never reached because the driver died),
    the attempt was incomplete and the first such step is where this one starts.

    >>> first_step(["a", "b", "c"], {"a": "succeeded", "b": "failed"})
    1
    >>> first_step(["a", "b", "c"], {"a": "succeeded", "b": "succeeded", "c": "succeeded"})
    0
    >>> first_step(["a", "b", "c"], {"a": "skipped", "b": "succeeded"})
    2
    >>> first_step(["a", "b", "c"], {"a": "succeeded", "b": "no_input", "c": "failed"})
    2
    """
    if from_step is not None:
        if from_step not in steps:
            raise ConfigError(f"--from-step: '{from_step}' is not in pipeline.steps {list(steps)}")
        return steps.index(from_step)
    if not resume or not previous:
        return 0
    pending = [i for i, name in enumerate(steps) if previous.get(name) not in DONE]
    return pending[0] if pending else 0


def previous_attempt(spark: SparkSession, config: Config, run_date: date) -> dict[str, str] | None:
    """step -> status of the latest attempt for `run_date`, or None before the first one."""
    path = tables.table_path(config, Layer.OPS, RUNS)
    if not tables.is_delta(spark, path):
        return None
    runs = tables.read(spark, path).where(F.col("run_date") == F.lit(run_date))
    latest = (
        runs.groupBy("pipeline_run_id")
        .agg(F.max("finished_at").alias("last"))
        .orderBy(F.col("last").desc())
        .first()
    )
    if latest is None:
        return None
    # Bounded: one row per configured step of one attempt.
    rows = runs.where(F.col("pipeline_run_id") == latest["pipeline_run_id"]).collect()
    return {row["step"]: row["status"] for row in rows}


def record(ctx: JobContext, outcomes: Sequence[Outcome]) -> None:
    """Appends outcomes to ops/pipeline_runs: a log, one row per step and attempt."""
    steps = ctx.config.pipeline.steps
    rows = [
        (
            ctx.run_date,
            ctx.run_id,
            steps.index(o.step) + 1,
            o.step,
            o.status.value,
            o.started_at,
            o.finished_at,
            round(o.seconds, 3),
            o.error,
        )
        for o in outcomes
    ]
    path = tables.table_path(ctx.config, Layer.OPS, RUNS)
    tables.append(ctx.spark.createDataFrame(rows, RUNS_SCHEMA), path)


def _record_failure(ctx: JobContext, outcome: Outcome) -> None:
    """Records a failed step without hiding the stage's own error if recording fails too."""
    try:
        record(ctx, [outcome])
    except Exception:
        log.exception("pipeline: could not record the failure of %s", outcome.step)


def run(ctx: JobContext) -> None:
    from precision_marketing import pipeline_summary
    from precision_marketing.cli import STAGES

    steps = ctx.config.pipeline.steps
    unknown = [s for s in steps if s not in STAGES or s == "pipeline"]
    if unknown:
        raise ConfigError(f"pipeline.steps: unknown stage '{unknown[0]}'")
    previous = previous_attempt(ctx.spark, ctx.config, ctx.run_date)
    start = first_step(
        steps,
        previous,
        ctx.options.get("from_step"),
        resume=not ctx.options.get("no_resume", False),
    )
    now = datetime.now(UTC)
    outcomes = [Outcome(name, Status.SKIPPED, now, now, 0.0) for name in steps[:start]]
    if outcomes:
        log.info("pipeline: starting at %s, skipping %s", steps[start], ", ".join(steps[:start]))
        record(ctx, outcomes)
    for name in steps[start:]:
        started_at, started = datetime.now(UTC), time.perf_counter()
        log.info("pipeline: %s ...", name)
        try:
            STAGES[name].run(ctx)
        except MissingInputError as exc:
            log.warning("pipeline: %s", exc)
            outcome = Outcome(
                name,
                Status.NO_INPUT,
                started_at,
                datetime.now(UTC),
                time.perf_counter() - started,
                str(exc)[:MAX_ERROR_CHARS],
            )
            record(ctx, [outcome])
            outcomes.append(outcome)
            continue
        except BaseException as exc:
            failed = Outcome(
                name,
                Status.FAILED,
                started_at,
                datetime.now(UTC),
                time.perf_counter() - started,
                f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS],
            )
            _record_failure(ctx, failed)
            print(pipeline_summary.render_steps(ctx, [*outcomes, failed]), flush=True)
            raise
        outcome = Outcome(
            name, Status.SUCCEEDED, started_at, datetime.now(UTC), time.perf_counter() - started
        )
        record(ctx, [outcome])
        outcomes.append(outcome)
        log.info("pipeline: %s done in %.1fs", name, outcome.seconds)
    try:
        text = pipeline_summary.render(ctx, outcomes)
    except Exception:  # every step succeeded: a summary that cannot be read must not fail it
        log.exception("pipeline: no summary of the tables")
        text = pipeline_summary.render_steps(ctx, outcomes)
    print(text, flush=True)

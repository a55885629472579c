"""What every job shares at run time: the run's identity and step logging with rows and seconds."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from precision_marketing.config import Config


class DataQualityError(RuntimeError):
    """A `fail`-severity expectation did not hold: the run stops before writing downstream."""


class MissingInputError(RuntimeError):
    """A stage's required input is absent or empty: it stops before any work (exit 4).

    The message is the whole story for the user (what the stage needs, what was missing, how to
    provide it), so it is shown as one line, without a traceback.
    """


@dataclass
class JobContext:
    spark: SparkSession
    config: Config
    run_date: date
    run_id: str
    started_at: datetime
    options: dict[str, Any] = field(default_factory=dict)


class Persisted:
    """The frames a run persists because several Spark jobs read them, released at its end.

    Released on failure too: a cached Delta read would otherwise be served, stale, to the next
    run in the same session (the pipeline and the tests share one). Use as a context manager.
    """

    def __init__(self) -> None:
        self._frames: list[DataFrame] = []

    def keep(self, df: DataFrame) -> DataFrame:
        self._frames.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    def release(self) -> None:
        for df in self._frames:
            df.unpersist()
        self._frames.clear()

    def __enter__(self) -> Persisted:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


# Test-only fault injection: when this variable names a point a job passes (`kill_point`), the
# driver SIGKILLs itself there, so the crash tests (tests/test_crash_recovery.py) die at a
# known moment: no `finally`, no rollback, exactly like an OOM kill or a lost node.
KILL_AT_ENV = "PM_TEST_KILL_AT"


def kill_point(name: str) -> None:
    """Dies at once with SIGKILL if $PM_TEST_KILL_AT names this point; otherwise nothing.

    Points are named `<stage>:<moment>`, e.g. `validate:results-written`; docs/reruns.md lists
    them. Never set the variable outside tests.
    """
    if os.environ.get(KILL_AT_ENV) == name:
        logging.getLogger(__name__).warning("%s=%s: killing the driver", KILL_AT_ENV, name)
        os.kill(os.getpid(), signal.SIGKILL)


def new_run_id(job: str, now: datetime) -> str:
    return f"{job}_{now.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:8]}"


@dataclass
class Step:
    name: str
    counts: dict[str, int] = field(default_factory=dict)

    def rows(self, **counts: int) -> None:
        self.counts.update(counts)


@contextmanager
def step(log: logging.Logger, name: str) -> Iterator[Step]:
    """Logs one line per step: its name, the row counts it reports and the seconds it took."""
    current = Step(name)
    started = time.perf_counter()
    try:
        yield current
    except Exception:
        log.error("step %s failed after %.1fs", name, time.perf_counter() - started)
        raise
    counts = " ".join(f"{k}={v}" for k, v in current.counts.items())
    log.info("step %-28s %s %.1fs", name, counts, time.perf_counter() - started)

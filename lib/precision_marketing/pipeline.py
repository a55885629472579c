"""pipeline: the configured stages in order, in one Spark application.

One application pays Spark's start-up cost once instead of once per stage; each stage is the
same code its own job runs, and the first failing stage stops the rest.
"""

from __future__ import annotations

import logging
import time

from precision_marketing.config import ConfigError
from precision_marketing.runtime import JobContext

log = logging.getLogger(__name__)


def run(ctx: JobContext) -> None:
    from precision_marketing.cli import STAGES

    steps = ctx.config.pipeline.steps
    unknown = [s for s in steps if s not in STAGES or s == "pipeline"]
    if unknown:
        raise ConfigError(f"pipeline.steps: unknown stage '{unknown[0]}'")
    for name in steps:
        started = time.perf_counter()
        log.info("pipeline: %s ...", name)
        STAGES[name].run(ctx)
        log.info("pipeline: %s done in %.1fs", name, time.perf_counter() - started)

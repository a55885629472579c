"""The command line every job shares: --env, --run-date, --set, plus the job's own options.

jobs/<job>.py only names its stage; this module parses arguments, loads config, builds the one
SparkSession, runs the stage(s) and turns the outcome into an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from precision_marketing.config import ConfigError, load_config
from precision_marketing.runtime import (
    DataQualityError,
    JobContext,
    MissingInputError,
    new_run_id,
)
from precision_marketing.spark import build_session, log_stream

log = logging.getLogger("precision_marketing")

EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_DATA_QUALITY = 3
# Not a crash: a stage without its input (a shop with no CRM has no one to publish to). Its own
# code, so a scheduler can skip the task (dags/) while a bad config (2) still fails it.
EXIT_MISSING_INPUT = 4


@dataclass(frozen=True)
class Stage:
    """A job: where its `run(ctx)` lives and the extra options it accepts."""

    module: str
    add_options: Callable[[argparse.ArgumentParser], None] | None = None

    def run(self, ctx: JobContext) -> None:
        importlib.import_module(self.module).run(ctx)


def _generate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, help="number of customers (generate.customers)")
    parser.add_argument("--seed", type=int, help="random seed (generate.seed)")
    parser.add_argument("--days", type=int, help="days of history before the run date")
    parser.add_argument("--defect-rate", type=float, help="share of injected bad rows")
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="generate only when no landing file exists yet (quickstart.sh reruns keep data)",
    )


def _pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from-step", help="start at this step (the ones before it are recorded as skipped)"
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="run every step, even if the last attempt for the run date failed part way",
    )


STAGES: dict[str, Stage] = {
    "generate": Stage("precision_marketing.datagen.job", _generate_options),
    "ingest": Stage("precision_marketing.ingest.job"),
    "validate": Stage("precision_marketing.quality.job"),
    "silver": Stage("precision_marketing.silver.job"),
    "features": Stage("precision_marketing.features.job"),
    "segment": Stage("precision_marketing.segments.job"),
    "recommend": Stage("precision_marketing.recommend.job"),
    "propensity": Stage("precision_marketing.propensity.job"),
    "publish": Stage("precision_marketing.activation.job"),
    "measure": Stage("precision_marketing.measure.job"),
    "simulate_response": Stage("precision_marketing.datagen.response_job"),
    "pipeline": Stage("precision_marketing.pipeline", _pipeline_options),
}


def parse_args(job: str, argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=job, description=f"precision-marketing job: {job}")
    parser.add_argument("--env", default="local", help="conf/<env>.yaml on top of base.yaml")
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        default=None,
        help="logical date of the run, YYYY-MM-DD (default: today, UTC)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set storage.warehouse=/tmp/wh (repeatable)",
    )
    stage = STAGES[job]
    if stage.add_options:
        stage.add_options(parser)
    return parser.parse_args(argv)


def configure_logging() -> None:
    """Step lines and warnings on stderr, one stream with Spark's; stdout keeps job results."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=log_stream(),
        # pyspark may have set up a handler on stdout already; job logs belong on stderr.
        force=True,
    )
    logging.captureWarnings(True)
    for noisy in ("py4j", "great_expectations", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(job: str, argv: Sequence[str] | None = None) -> int:
    configure_logging()
    args = parse_args(job, sys.argv[1:] if argv is None else argv)
    started = datetime.now(UTC)
    try:
        config = load_config(args.env, args.overrides)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_BAD_CONFIG
    options = {k: v for k, v in vars(args).items() if k not in {"env", "run_date", "overrides"}}
    spark = build_session(config, f"{config.spark.app_name}:{job}")
    ctx = JobContext(
        spark=spark,
        config=config,
        run_date=args.run_date or started.date(),
        run_id=new_run_id(job, started),
        started_at=started,
        options=options,
    )
    t0 = time.perf_counter()
    log.info("%s run_id=%s run_date=%s env=%s", job, ctx.run_id, ctx.run_date, config.env)
    try:
        STAGES[job].run(ctx)
    except ConfigError as exc:
        log.error("%s: configuration error: %s", job, exc)
        return EXIT_BAD_CONFIG
    except DataQualityError as exc:
        log.error("%s stopped by a data-quality rule: %s", job, exc)
        return EXIT_DATA_QUALITY
    except MissingInputError as exc:
        log.error("%s", exc)  # the message says it all: no traceback
        return EXIT_MISSING_INPUT
    except Exception:
        log.exception("%s failed", job)
        return EXIT_FAILED
    finally:
        spark.stop()
    log.info("%s finished in %.1fs", job, time.perf_counter() - t0)
    return 0

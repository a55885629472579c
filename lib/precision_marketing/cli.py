"""The command line every job shares: --env, --run-date, --set, --verbose, plus the job's own.

jobs/<job>.py only names its stage; this module parses arguments, loads config, checks what the
stage(s) will need (before Spark starts), takes the warehouse lock, builds the one SparkSession,
runs the stage(s) and turns the outcome into an exit code. Mistakes a person can fix (arguments,
config, contract files) end in one line on stderr saying what and where to look; the traceback
only with --verbose.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)

from precision_marketing.config import Config, ConfigError, load_config
from precision_marketing.io.lock import WarehouseBusyError, warehouse_lock
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
# Another run holds the warehouse (io/lock.py), or Delta refused a write that conflicted with
# a concurrent one: nothing of this run is half-done; run it again when the other has finished.
EXIT_BUSY = 5

# Where to look when a config error does not say (ConfigError.see).
SEE_CONFIG = "conf/base.yaml and README.md#configuration"
SEE_SOURCES = "docs/bring-your-own-data.md"
SEE_SUITES = "conf/expectations/ and docs/data-contract.md"
SEE_CAMPAIGNS = "conf/campaigns.yaml and README.md"
# Delta's optimistic-concurrency errors: another writer committed first.
WRITE_CONFLICTS = (
    DeltaConcurrentModificationException,
    ConcurrentWriteException,
    MetadataChangedException,
    ProtocolChangedException,
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException,
    ConcurrentTransactionException,
)


class UsageError(ValueError):
    """A command line argparse rejected (unknown option, bad value): exit 2, one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake raises UsageError instead of printing usage and exiting, so
    every front end (cli.main, submit.py) reports it as one line."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _run_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a date: expected YYYY-MM-DD, e.g. 2026-06-30"
        ) from None


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
    parser.add_argument(
        "--next-day",
        action="store_true",
        help="land one more day of files after the generated history (same world and seed); "
        "run the pipeline on the day after it",
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
    "generate": Stage("precision_marketing.generate.job", _generate_options),
    "ingest": Stage("precision_marketing.ingest.job"),
    "validate": Stage("precision_marketing.validate.job"),
    "silver": Stage("precision_marketing.silver.job"),
    "features": Stage("precision_marketing.features.job"),
    "segment": Stage("precision_marketing.segment.job"),
    "recommend": Stage("precision_marketing.recommend.job"),
    "propensity": Stage("precision_marketing.propensity.job"),
    "publish": Stage("precision_marketing.publish.job"),
    "measure": Stage("precision_marketing.measure.job"),
    "monitor": Stage("precision_marketing.monitor.job"),
    "simulate_response": Stage("precision_marketing.generate.response_job"),
    "pipeline": Stage("precision_marketing.pipeline", _pipeline_options),
}


# The model stages (and the pipeline that runs them) say how to force a refit.
REFIT_HELP = (
    "models are refitted every <model>.retrain_every_days (0: every run) and served from the "
    "champion version between refits; --set pipeline.refit=true forces a refit "
    "(README.md: model registry)"
)
MODEL_JOBS = frozenset({"segment", "recommend", "propensity", "pipeline"})


def parse_args(job: str, argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(
        prog=job,
        description=f"precision-marketing job: {job}",
        epilog=REFIT_HELP if job in MODEL_JOBS else None,
    )
    parser.add_argument("--env", default="local", help="conf/<env>.yaml on top of base.yaml")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the Python traceback of configuration and argument errors",
    )
    parser.add_argument(
        "--run-date",
        type=_run_date,
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


def check_before_start(
    job: str, config: Config, options: dict[str, typing.Any], driver: bool = True
) -> None:
    """Reads every config file the stage(s) will need, before Spark starts (ConfigError).

    A typo in sources.yaml or a missing salt then costs a second, not a Spark start and the
    stages before the one that reads it. `driver`: also what only the driver's environment
    holds (the PII salt); submit.py runs on the submitting machine, which in YARN cluster
    mode hands the salt on without having it.
    """
    from precision_marketing import pipeline
    from precision_marketing.contracts import SOURCES
    from precision_marketing.ingest.mapping import load_sources
    from precision_marketing.publish.campaigns import load_campaigns
    from precision_marketing.validate.suites import load_suite

    steps = [job]
    if job == "pipeline":
        steps = list(config.pipeline.steps)
        unknown = [s for s in steps if s not in STAGES or s == "pipeline"]
        if unknown:
            stages = ", ".join(s for s in STAGES if s != "pipeline")
            raise ConfigError(
                f"pipeline.steps: unknown stage '{unknown[0]}' (stages: {stages})",
                see="pipeline.steps in conf/base.yaml",
            )
        pipeline.first_step(steps, None, options.get("from_step"))
    checks: list[tuple[str, str, typing.Callable[[], object]]] = [
        ("ingest", SEE_SOURCES, lambda: load_sources(config)),
        (
            "validate",
            SEE_SUITES,
            lambda: [load_suite(config.expectations_path(), t) for t in SOURCES],
        ),
        ("silver" if driver else "", SEE_CONFIG, config.pii_salt),
        (
            "publish",
            SEE_CAMPAIGNS,
            lambda: load_campaigns(config.campaigns_path(), config.features.top_categories),
        ),
    ]
    for stage, see, check in checks:
        if stage in steps:
            try:
                check()
            except ConfigError as exc:
                exc.see = exc.see or see
                raise


def error_line(job: str, kind: str, exc: BaseException) -> str:
    """The one line a person sees: what went wrong and where to look."""
    see = getattr(exc, "see", None) or (SEE_CONFIG if isinstance(exc, ConfigError) else None)
    return f"{job}: {kind}: {exc}" + (f" (see {see})" if see else "")


def prepare(
    job: str, argv: Sequence[str], driver: bool = True
) -> tuple[argparse.Namespace, Config, dict[str, typing.Any]]:
    """Arguments, config and the pre-start checks: everything that fails without Spark."""
    args = parse_args(job, argv)
    config = load_config(args.env, args.overrides)
    options = {
        k: v for k, v in vars(args).items() if k not in {"env", "run_date", "overrides", "verbose"}
    }
    check_before_start(job, config, options, driver)
    return args, config, options


def refusal(job: str, exc: Exception) -> tuple[str, int] | None:
    """(line, exit code) for an error a person can act on, or None for a crash."""
    if isinstance(exc, UsageError):
        return error_line(job, "argument error", exc), EXIT_BAD_CONFIG
    if isinstance(exc, ConfigError):
        return error_line(job, "configuration error", exc), EXIT_BAD_CONFIG
    if isinstance(exc, WarehouseBusyError):
        return error_line(job, "warehouse busy", exc), EXIT_BUSY
    if isinstance(exc, WRITE_CONFLICTS) or "[DELTA_CONCURRENT" in str(exc):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = (
            f"another run wrote the same Delta table at the same time ({first}); "
            "this run's tables were left as they were: run it again when the other has finished"
        )
        return f"{job}: write conflict: {message} (see docs/reruns.md)", EXIT_BUSY
    return None


def main(job: str, argv: Sequence[str] | None = None) -> int:
    configure_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    started = datetime.now(UTC)
    try:
        args, config, options = prepare(job, argv)
    except (UsageError, ConfigError) as exc:
        line, code = refusal(job, exc) or ("", EXIT_FAILED)
        log.error(line, exc_info=verbose)
        return code
    run_id = new_run_id(job, started)
    try:
        with warehouse_lock(config, job, run_id):
            return _run(job, args, config, options, started, run_id)
    except Exception as exc:
        refused = refusal(job, exc)
        if refused is None:
            log.exception("%s failed", job)
            return EXIT_FAILED
        log.error(refused[0], exc_info=verbose)
        return refused[1]


def _run(
    job: str,
    args: argparse.Namespace,
    config: Config,
    options: dict[str, typing.Any],
    started: datetime,
    run_id: str,
) -> int:
    """The stage on a fresh session; errors a person can act on propagate to main."""
    spark = build_session(config, f"{config.spark.app_name}:{job}")
    ctx = JobContext(
        spark=spark,
        config=config,
        run_date=args.run_date or started.date(),
        run_id=run_id,
        started_at=started,
        options=options,
    )
    t0 = time.perf_counter()
    log.info("%s run_id=%s run_date=%s env=%s", job, ctx.run_id, ctx.run_date, config.env)
    try:
        STAGES[job].run(ctx)
    except DataQualityError as exc:
        log.error("%s stopped by a data-quality rule: %s", job, exc)
        return EXIT_DATA_QUALITY
    except MissingInputError as exc:
        log.error("%s", exc)  # the message says it all: no traceback
        return EXIT_MISSING_INPUT
    finally:
        spark.stop()
    log.info("%s finished in %.1fs", job, time.perf_counter() - t0)
    return 0

"""The real-shaped fixtures (tests/fixtures/real_shaped/README.md), each run once per test process
by the `pipeline` job with every stage of conf/base.yaml's pipeline.steps.

Shared by tests/test_real_shaped.py (exact outputs per fixture) and tests/test_requirements.py
(the views-only warehouse: what a stage without its input says). Numbers marked DATA follow from
the fixture files alone (make.py's `expected_counts` and the README derive them); the others are
the suite's documented behaviour (docs/bring-your-own-data.md).
"""

from __future__ import annotations

import io
import shutil
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from precision_marketing.config import Config, load_config
from precision_marketing.io.tables import Layer
from tests.support import make_config, run_stage

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "real_shaped"
ALL_STEPS = tuple(load_config("local").pipeline.steps)
USD_RATE = 0.92

SILVER_TABLES = ("events", "customers", "customer_history", "order_lines", "items")


@dataclass(frozen=True)
class Case:
    fixture: str
    run_date: date
    overrides: tuple[str, ...]
    steps: dict[str, str]  # step -> status in ops/pipeline_runs
    silver: dict[str, int]  # DATA (see each case)
    gold: dict[str, int] = field(default_factory=dict)  # table -> rows at the run date
    exclude: str = "bought"  # recommend.exclude the case runs with


def _ran(*no_input: str) -> dict[str, str]:
    return {s: ("no_input" if s in no_input else "succeeded") for s in ALL_STEPS}


CASES = {
    c.fixture: c
    for c in (
        Case(
            "transactions_only",
            date(2026, 6, 30),
            (
                f"ingest.sources_file={FIXTURES}/transactions_only/sources.yaml",
                f"currency.rates={{USD: {USD_RATE}}}",
                # conf/base.yaml's cadence: the first run fits, the rerun serves what it fitted
                # (a refit's reruns are the model modules' tests).
                *(
                    f"{model}.retrain_every_days=7"
                    for model in ("segment", "recommend", "propensity")
                ),
            ),
            # Every stage has an input. publish: the CRM exists but has no consent columns, so
            # every matched customer is excluded; measure runs on those audiences.
            steps=_ran(),
            # DATA: 133 invoices of one line, 40 CRM rows, 3 items, no events.
            silver={
                "events": 0,
                "customers": 40,
                "customer_history": 40,
                "order_lines": 133,
                "items": 3,
            },
            gold={
                "user_features": 40,  # DATA: every CRM customer signed up before the run date
                "segments": 40,  # one row per user_features row
                "propensity": 40,  # every customer of the run date's snapshot scored
                "recommendations": 57,  # DATA if every unbought item is served (README)
                # 3 campaigns, none contactable (no consent); two select by propensity decile, so
                # the count follows the scores' ties: 28 before the cadence features and the
                # GBT challenger (2026-12-01), 26 since.
                "audiences": 26,
            },
        ),
        Case(
            "views_only",
            date(2026, 6, 30),
            ("recommend.exclude=seen",),
            # No order lines to label, no CRM to contact, so no audiences to measure.
            steps=_ran("propensity", "publish", "measure"),
            silver={
                "events": 263,
                "customers": 0,
                "customer_history": 0,
                "order_lines": 0,
                "items": 15,
            },  # DATA (current tree: same, without the empty tables)
            gold={
                "user_features": 40,  # without a CRM the base is the active customers
                "segments": 40,
                "recommendations": 120,  # DATA: at most 9 of 15 seen, so 3 unseen each
            },
            exclude="seen",
        ),
        Case(
            "no_crm",
            date(2026, 6, 30),
            (),
            steps=_ran("publish", "measure"),  # no CRM: nobody to contact
            # DATA: order_customer_known passes (with a warning) while the CRM never had a row;
            # 82 rows, one refund netted off its sale.
            silver={
                "events": 417,
                "customers": 0,
                "customer_history": 0,
                "order_lines": 81,
                "items": 10,
            },
            gold={
                "user_features": 30,  # event and order customers, no CRM base
                "segments": 30,
                "propensity": 30,
                "recommendations": 90,  # DATA: everyone has >= 3 unbought items
            },
        ),
        Case(
            "replay_1997",
            date(1998, 1, 1),
            (),
            steps=_ran(),  # measure runs: audiences and transactions exist
            silver={
                "events": 0,
                "customers": 50,
                "customer_history": 50,
                "order_lines": 208,
                "items": 20,
            },  # DATA (current tree: the same, events table aside)
            gold={
                "user_features": 50,  # DATA: every customer signed up in 1997-Q1
                "segments": 50,
                "propensity": 50,
                "recommendations": 150,  # DATA: everyone has >= 3 unbought CDs
            },
        ),
    )
}

GOLD_LAYER = {"audiences": Layer.ACTIVATION}

# Every test of a case names it as its parameter, except in these modules, which use one case.
USED_BY = {"test_requirements.py": "views_only"}


def shared_by(nodeid: str) -> str | None:
    """The scheduling group of a test that uses a case's run (tests/conftest.py)."""
    module, _, test = nodeid.partition("::")
    case = USED_BY.get(module.rsplit("/", 1)[-1]) or test.partition("[")[2].removesuffix("]")
    return f"real_shaped[{case}]" if case in CASES else None


@dataclass
class Run:
    case: Case
    config: Config
    error: BaseException | None
    summary: str  # what `pipeline` printed


_runs: dict[str, Run] = {}


def pipeline_run(spark: SparkSession, factory: pytest.TempPathFactory, name: str) -> Run:
    """The fixture's one pipeline run in this process (shared by the tests below)."""
    if name not in _runs:
        case = CASES[name]
        root = factory.mktemp(f"real_{name}")
        shutil.copytree(FIXTURES / name, root / "landing")
        config = make_config(root, f"pipeline.steps=[{','.join(ALL_STEPS)}]", *case.overrides)
        error: BaseException | None = None
        printed = io.StringIO()
        try:
            with redirect_stdout(printed):
                run_stage(spark, config, "pipeline", case.run_date)
        except (Exception, SystemExit) as exc:  # kept for the assertion messages
            error = exc
        _runs[name] = Run(case, config, error, printed.getvalue())
    return _runs[name]

"""One local-mode SparkSession per test process, built by the project's own factory.

The suite runs in two processes (pytest-xdist, `-n 2` in pyproject.toml), module by module so
that each module's fixtures are built once, except that the tests sharing a warehouse cached
across modules (tests/pipeline_fixture.py, tests/real_shaped_fixture.py) run in one process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession
from xdist.scheduler import LoadScopeScheduling

from precision_marketing.spark import build_session
from tests import pipeline_fixture, propensity_fixture, real_shaped_fixture
from tests.support import RUN_DATE, SESSION_JAVA_OPTIONS, make_config, run_stage

__all__ = ["RUN_DATE", "make_config", "run_stage", "spark"]


def work_unit(nodeid: str) -> str:
    """The module of a test, or the warehouse it shares with other modules' tests."""
    return (
        pipeline_fixture.shared_by(nodeid)
        or propensity_fixture.shared_by(nodeid)
        or real_shaped_fixture.shared_by(nodeid)
        or nodeid.split("::")[0]
    )


# Long units (two to six minutes each on this 2-core machine, from the slowest setups of the
# sequential fresh-clone run of 2026-12-01) start first, so that the two processes finish
# close together. The two-process run since measured test_sources and test_validate_gates as
# long too (about 350 s each); the processes still finished together.
LONGEST_FIRST = (
    # The mini cluster's run mostly waits on YARN's containers: it overlaps the other process.
    "tests/test_yarn.py",
    "pipeline_warehouse",
    "real_shaped[transactions_only]",
    "propensity_first_fit",
    "real_shaped[replay_1997]",
    "tests/test_crash_recovery.py",
    "real_shaped[no_crm]",
    "tests/test_incremental.py",
    "tests/test_recommend_job.py",
    "real_shaped[views_only]",
    "tests/test_bad_input.py",
    "tests/test_cluster.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest units first, each unit's tests together in their module order."""
    start = {unit: n for n, unit in enumerate(LONGEST_FIRST)}
    order = {unit: n for n, unit in enumerate(dict.fromkeys(work_unit(i.nodeid) for i in items))}
    items.sort(
        key=lambda i: (start.get(work_unit(i.nodeid), len(start)), order[work_unit(i.nodeid)])
    )


class SharedWarehouseScheduling(LoadScopeScheduling):
    """Hands out whole work units (`work_unit`) in collection order."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling:
    return SharedWarehouseScheduling(config, log)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    config = make_config(tmp_path_factory.mktemp("session"), SESSION_JAVA_OPTIONS)
    session = build_session(config, "precision-marketing-tests")
    yield session
    session.stop()


@pytest.fixture(autouse=True, scope="module")
def _release_cached_frames() -> Iterator[None]:
    """Each module starts with the driver's storage memory free: a frame a failed test left
    persisted would otherwise squeeze later modules' broadcasts (seen in CI as a
    'Not enough memory to build and broadcast' error two modules later)."""
    yield
    active = SparkSession.getActiveSession()  # modules without Spark start none
    if active is not None:
        active.catalog.clearCache()

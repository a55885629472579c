"""One local-mode SparkSession for the whole test run, built by the project's own factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from precision_marketing.spark import build_session
from tests.support import RUN_DATE, make_config, run_stage

__all__ = ["RUN_DATE", "make_config", "run_stage", "spark"]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    config = make_config(tmp_path_factory.mktemp("session"))
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

"""One local-mode SparkSession for the whole test run, built by the project's own factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from precision_marketing.config import Config, load_config
from precision_marketing.spark import build_session
from pyspark.sql import SparkSession


def make_config(tmp: Path, *overrides: str) -> Config:
    """The test env with storage under `tmp`, plus any overrides."""
    return load_config(
        "test",
        [
            f"storage.landing={tmp}/landing",
            f"storage.warehouse={tmp}/warehouse",
            f"storage.ground_truth={tmp}/ground_truth",
            *overrides,
        ],
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    config = make_config(tmp_path_factory.mktemp("session"))
    session = build_session(config, "precision-marketing-tests")
    yield session
    session.stop()

"""A small warehouse built the way users build theirs: generate, then the `pipeline` job.

Built once per test process (the notebooks, the pipeline-summary tests and the generated-data
quality tests share it): 100 generated customers run through every stage of conf/base.yaml's
pipeline.steps, in one `pipeline` run in this process, on the shared session, with Data Docs on
(the summary lists their page). Its summary text is kept for tests.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from precision_marketing.config import Config, load_config
from tests.support import RUN_DATE, make_config, run_stage

# conf/base.yaml's pipeline.steps (conf/test.yaml narrows them for the spark-submit test).
PIPELINE_ORDER = tuple(load_config("local").pipeline.steps)


@dataclass(frozen=True)
class Warehouse:
    config: Config
    steps: list[str]
    summary: str  # what `pipeline` printed


_built: dict[str, Warehouse] = {}

# The modules that use the warehouse: their tests run in the test process that builds it.
USED_BY = (
    "test_generated_pipeline.py",
    "test_monitor.py",
    "test_notebooks.py",
    "test_pipeline_resume.py",
    "test_schemas.py",
)


def shared_by(nodeid: str) -> str | None:
    """The scheduling group of a test that uses the warehouse (tests/conftest.py)."""
    return "pipeline_warehouse" if nodeid.split("::")[0].endswith(USED_BY) else None


def warehouse_config(root: Path, *overrides: str) -> Config:
    """The warehouse's config under `root`: every stage, Data Docs on (bench.suite_pipelines
    times the same pipeline)."""
    steps = ",".join(PIPELINE_ORDER)
    return make_config(root, f"pipeline.steps=[{steps}]", "validate.data_docs=true", *overrides)


def pipeline_warehouse(spark: SparkSession, factory: pytest.TempPathFactory) -> Warehouse:
    if "warehouse" not in _built:
        root: Path = factory.mktemp("pipeline_warehouse")
        steps = list(PIPELINE_ORDER)
        config = warehouse_config(root)
        run_stage(spark, config, "generate", RUN_DATE)
        printed = io.StringIO()
        with redirect_stdout(printed):
            run_stage(spark, config, "pipeline", RUN_DATE)
        _built["warehouse"] = Warehouse(config, steps, printed.getvalue())
    return _built["warehouse"]

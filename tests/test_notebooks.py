"""notebooks/: every notebook runs headless (nbclient) on a small warehouse the real stages built.

Parametrized over the folder, so a new notebook is covered without touching this file. The
warehouse is tests/pipeline_fixture.py's: 100 generated customers through every registered
stage, built once per test process.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from pyspark.sql import SparkSession

from precision_marketing.io import tables
from tests.pipeline_fixture import Warehouse, pipeline_warehouse

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return pipeline_warehouse(spark, tmp_path_factory)


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(
    warehouse: Warehouse, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel is a child process: it reads the warehouse and env from its environment.
    monkeypatch.setenv("PM_WAREHOUSE", tables.warehouse(warehouse.config))
    monkeypatch.setenv("PM_ENV", "test")
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "lib"))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()  # raises CellExecutionError on the first failing cell
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code
    assert all(c.execution_count is not None for c in code)
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert [o for o in outputs if o.get("output_type") in ("execute_result", "display_data")]

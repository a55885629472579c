"""notebooks/: every notebook runs headless (nbclient) on a small warehouse the real stages built.

Parametrized over the folder; a new notebook fails until ANSWERS says what it must show. The
warehouse is tests/pipeline_fixture.py's: 100 generated customers through every registered
stage for RUN_DATE, built once per test process (shared with the summary and generated-data
tests). After its own cells, each notebook runs one more cell that prints, as JSON, what its
tables show; the test compares that with what the fixture fixes: the run date, the 100
customers, conf/test.yaml's top_n of 3, ten deciles, a first segment model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from pyspark.sql import SparkSession

from precision_marketing.io import tables
from tests.pipeline_fixture import Warehouse, pipeline_warehouse
from tests.support import RUN_DATE

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CUSTOMERS = 100  # tests/pipeline_fixture.py: conf/test.yaml's generate.customers
TOP_N = 3  # conf/test.yaml's recommend.top_n

# Per notebook: a cell run after the notebook's own (pandas frames only: the last cell stopped
# Spark) printing JSON, and the answer it must print.
ANSWERS: dict[str, tuple[str, dict[str, Any]]] = {
    "propensity": (
        """print(json.dumps({
    "as_of": str(latest),
    "scored": int(snapshots.loc[snapshots["as_of_date"] == latest, "count"].sum()),
    "models": sorted(set(overall["model"]) & {"propensity", "recency_baseline"}),
    "deciles": sorted(int(d) for d in set(deciles.loc[deciles["model"] == "propensity", "decile"])),
    "trained_on_before": all(d < str(latest) for d in params["train_as_of_dates"]),
}))""",
        {
            "as_of": RUN_DATE.isoformat(),
            "scored": CUSTOMERS,
            "models": ["propensity", "recency_baseline"],
            "deciles": list(range(1, 11)),
            "trained_on_before": True,
        },
    ),
    "recommendations": (
        """import json
print(json.dumps({
    "as_of": str(as_of),
    "rows": int(by_source["rows"].sum()),
    "examples": [len(examples), int(examples["customer_id"].nunique())],
    "ndcg_models": sorted(set(ndcg["model"]) & {"als", "popular"}),
}))""",
        {
            "as_of": RUN_DATE.isoformat(),
            "rows": CUSTOMERS * TOP_N,  # every customer gets N, whichever source serves them
            "examples": [3 * TOP_N, 3],
            "ndcg_models": ["als", "popular"],
        },
    ),
    "segments": (
        """print(json.dumps({
    "as_of": str(latest),
    "segmented": int(snapshots.loc[snapshots["as_of_date"] == latest, "count"].sum()),
    "sizes": int(sum(r.size for r in rows)),
    "k_is_profiles": metadata["params"]["k"] == len(rows),
    "first_model": isinstance(matrix, str),
}))""",
        {
            "as_of": RUN_DATE.isoformat(),
            "segmented": CUSTOMERS,
            "sizes": CUSTOMERS,
            "k_is_profiles": True,
            "first_model": True,
        },
    ),
}


@pytest.fixture(scope="module")
def warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return pipeline_warehouse(spark, tmp_path_factory)


def test_there_are_notebooks_and_each_has_its_answer() -> None:
    assert sorted(p.stem for p in NOTEBOOKS) == sorted(ANSWERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(
    warehouse: Warehouse, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel is a child process: it reads the warehouse and env from its environment.
    monkeypatch.setenv("PM_WAREHOUSE", tables.warehouse(warehouse.config))
    monkeypatch.setenv("PM_ENV", "test")
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "lib"))
    notebook = nbformat.read(path, as_version=4)
    check, answer = ANSWERS[path.stem]
    notebook.cells.append(nbformat.v4.new_code_cell(check))
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()  # raises CellExecutionError on the first failing cell
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code
    assert all(c.execution_count is not None for c in code)
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert [o for o in outputs if o.get("output_type") in ("execute_result", "display_data")]
    printed = "".join(o.get("text", "") for o in code[-1].get("outputs", []))
    assert json.loads(printed) == answer

"""The suite's two test processes (tests/conftest.py): a warehouse cached for several modules
is built once, because every test that uses it is scheduled in the same process."""

from __future__ import annotations

import re
from pathlib import Path

from tests import pipeline_fixture, propensity_fixture, real_shaped_fixture
from tests.conftest import LONGEST_FIRST, work_unit
from tests.real_shaped_fixture import CASES

TESTS = Path(__file__).parent


def _modules_calling(pattern: str) -> set[str]:
    return {p.name for p in TESTS.glob("test_*.py") if re.search(pattern, p.read_text())}


def test_every_module_using_the_pipeline_warehouse_is_declared() -> None:
    assert _modules_calling(r"pipeline_warehouse\(") == set(pipeline_fixture.USED_BY)


def test_every_module_using_the_propensity_first_fit_is_declared() -> None:
    assert _modules_calling(r"fx\.fitted\(") == set(propensity_fixture.USED_BY)


def test_a_real_shaped_case_is_named_in_the_test_id_or_declared_per_module() -> None:
    named_in_code = _modules_calling(r"pipeline_run\([^)]*\"")
    assert named_in_code == set(real_shaped_fixture.USED_BY)


def test_tests_are_grouped_by_module_or_by_the_warehouse_they_share() -> None:
    assert {
        nodeid: work_unit(nodeid)
        for nodeid in (
            "tests/test_config.py::test_layers_override_in_order",
            "tests/test_schemas.py::test_written_tables_have_their_declared_schema[gold-x]",
            "tests/test_notebooks.py::test_notebook_runs_headless[segments]",
            "tests/test_real_shaped.py::test_nothing_is_quarantined[no_crm]",
            "tests/test_real_shaped.py::test_committed_fixtures_are_what_make_py_writes",
            "tests/test_requirements.py::test_the_job_exits_4_with_one_line_and_no_traceback",
            "tests/test_registry.py::test_plan_follows_cadence_monitor_and_replays",
        )
    } == {
        "tests/test_config.py::test_layers_override_in_order": "tests/test_config.py",
        "tests/test_schemas.py::test_written_tables_have_their_declared_schema[gold-x]": (
            "pipeline_warehouse"
        ),
        "tests/test_notebooks.py::test_notebook_runs_headless[segments]": "pipeline_warehouse",
        "tests/test_real_shaped.py::test_nothing_is_quarantined[no_crm]": "real_shaped[no_crm]",
        "tests/test_real_shaped.py::test_committed_fixtures_are_what_make_py_writes": (
            "tests/test_real_shaped.py"
        ),
        "tests/test_requirements.py::test_the_job_exits_4_with_one_line_and_no_traceback": (
            "real_shaped[views_only]"
        ),
        "tests/test_registry.py::test_plan_follows_cadence_monitor_and_replays": (
            "propensity_first_fit"
        ),
    }


def test_the_longest_units_named_first_exist() -> None:
    root = TESTS.parent
    for unit in LONGEST_FIRST:
        assert (
            unit
            in ("pipeline_warehouse", "propensity_first_fit", *(f"real_shaped[{c}]" for c in CASES))
            or (root / unit).is_file()
        ), unit

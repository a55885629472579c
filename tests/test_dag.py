"""dags/: loaded by Airflow's own DagBag in .venv-airflow, the task graph and the commands.

Airflow lives in its own venv (scripts/setup.sh --airflow), so the DAG is loaded by that venv's
Python in a subprocess, with AIRFLOW_HOME in a temp dir, and reported back as JSON. Besides the
graph, one task is rendered as a run for 2026-06-30 would render it, with the real output of
the `package` task, and its spark-submit command line is compared with what ./spark-submit.sh
ships for the same job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from precision_marketing.cli import EXIT_BAD_CONFIG, EXIT_DATA_QUALITY, EXIT_MISSING_INPUT
from precision_marketing.submit import ROOT, submission

AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
JOBS = [
    "ingest",
    "validate",
    "silver",
    "features",
    "segment",
    "propensity",
    "recommend",
    "publish",
    "measure",
    "monitor",
]
EDGES = {
    ("package", "ingest"),
    ("ingest", "validate"),
    ("validate", "silver"),
    ("silver", "features"),
    ("features", "segment"),
    ("features", "propensity"),
    ("segment", "recommend"),
    ("segment", "publish"),
    ("recommend", "publish"),
    ("propensity", "publish"),
    ("publish", "measure"),
    ("measure", "monitor"),
}
MASTER = "spark://127.0.0.1:7077"

# Runs in .venv-airflow: loads the folder, describes the DAG, renders `segment`.
LOAD = r"""
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
}
dag = bag.dags["precision_marketing"]
out["params"] = {key: dag.params[key] for key in dag.params}
out["tasks"] = {
    t.task_id: {
        "type": type(t).__name__,
        "upstream": sorted(t.upstream_task_ids),
        "retries": t.retries,
        "retry_delay": t.retry_delay.total_seconds(),
        "trigger_rule": str(t.trigger_rule.value),
        **{
            k: getattr(t, k, None)
            for k in ("application", "application_args", "py_files", "jars", "properties_file",
                      "name", "env_vars", "_conn_id")
        },
    }
    for t in dag.tasks
}
spec = dag.get_task("package").python_callable(env="test")


class PackageOutput:
    # What ti.xcom_pull returns in a real run: the package task's return value.
    def xcom_pull(self, task_ids):
        assert task_ids == "package", task_ids
        return spec


task = dag.get_task("segment")
task.render_template_fields({"ti": PackageOutput(), "params": {"env": "test"}, "ds": "2026-06-30"})
out["spec"] = spec
out["command"] = task._get_hook()._build_spark_submit_command(task.application)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assert AIRFLOW_PYTHON.exists(), f"no {AIRFLOW_PYTHON}: run scripts/setup.sh --airflow"
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_SPARK_DEFAULT=MASTER,
    )
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", LOAD, str(ROOT / "dags")],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_the_dag_loads_without_import_errors(loaded: dict[str, Any]) -> None:
    assert loaded["import_errors"] == {}
    assert loaded["dag_ids"] == ["precision_marketing"]


def test_one_spark_submit_task_per_job_in_data_flow_order(loaded: dict[str, Any]) -> None:
    tasks = loaded["tasks"]
    assert set(tasks) == {"package", *JOBS}
    assert tasks["package"]["type"] == "_PythonDecoratedOperator"
    assert {tasks[job]["type"] for job in JOBS} == {"StageSubmit"}
    edges = {(up, task) for task, t in tasks.items() for up in t["upstream"]}
    assert edges == EDGES


def test_each_task_submits_its_job_for_the_templated_run_date(loaded: dict[str, Any]) -> None:
    for job in JOBS:
        task = loaded["tasks"][job]
        assert task["application"] == f"{ROOT}/jobs/{job}.py"
        assert task["application_args"] == ["--env", "{{ params.env }}", "--run-date", "{{ ds }}"]
        assert task["_conn_id"] == "spark_default"
        assert task["env_vars"] == {
            "PM_CONF_DIR": f"{ROOT}/conf",
            "PYSPARK_PYTHON": f"{ROOT}/.venv/bin/python",
            "PYSPARK_DRIVER_PYTHON": f"{ROOT}/.venv/bin/python",
        }
    assert loaded["params"] == {"env": "local"}


def test_retries_except_for_validate_and_skipped_inputs_do_not_stop_the_rest(
    loaded: dict[str, Any],
) -> None:
    tasks = loaded["tasks"]
    retries = {job: tasks[job]["retries"] for job in JOBS}
    assert retries == {job: 0 if job == "validate" else 2 for job in JOBS}
    assert {tasks[job]["retry_delay"] for job in JOBS} == {300.0}
    # validate's exit code 3 fails its task, and none_failed keeps everything after it waiting;
    # a stage skipped for want of input (exit 4) lets the next ones run.
    rules = {task: t["trigger_rule"] for task, t in tasks.items()}
    assert rules == {
        "package": "all_success",
        "ingest": "all_success",
        **{job: "none_failed" for job in JOBS if job != "ingest"},
    }


def test_the_rendered_command_ships_what_spark_submit_sh_ships(loaded: dict[str, Any]) -> None:
    command: list[str] = loaded["command"]
    expected = submission("segment", ["--env", "test"], ROOT / "build")

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert command[0] == "spark-submit"
    assert option("--master") == MASTER
    assert option("--name") == f"{expected.app_name}:segment"
    assert option("--py-files") == str(expected.py_files)
    assert option("--jars") == ",".join(expected.jars)
    assert command[-5:] == [f"{ROOT}/jobs/segment.py", "--env", "test", "--run-date", "2026-06-30"]
    properties = Path(option("--properties-file")).read_text().splitlines()
    assert dict(line.split("=", 1) for line in properties) == expected.conf
    assert "--conf" not in command


# Runs in .venv-airflow: a job task's spark-submit (pyspark's own, local mode) runs an app that
# exits with the code given, and the task's outcome is reported.
EXECUTE = r"""
import importlib.util, json, sys
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
spec = importlib.util.spec_from_file_location("pm_dag", sys.argv[1])
dag_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dag_module)
outcomes = {}
for code in sys.argv[3:]:
    task = dag_module.StageSubmit(
        task_id=f"exit_{code}", conn_id="spark_local", application=sys.argv[2],
        application_args=[code],
    )
    try:
        task.execute({})
        outcomes[code] = "succeeded"
    except AirflowSkipException:
        outcomes[code] = "skipped"
    except AirflowException:
        outcomes[code] = "failed"
print(json.dumps(outcomes))
"""


def test_a_stage_without_input_skips_its_task_and_other_failures_fail_it(tmp_path: Path) -> None:
    app = tmp_path / "exits.py"
    app.write_text("import sys\nsys.exit(int(sys.argv[1]))\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow_home"),
        AIRFLOW_CONN_SPARK_LOCAL=json.dumps({"conn_type": "spark", "host": "local[1]"}),
        # The pinned pyspark's spark-submit first on PATH, as the DAG's docstring asks.
        PATH=f"{ROOT}/.venv/bin:{os.environ['PATH']}",
        PYSPARK_PYTHON=sys.executable,
    )
    codes = ["0", str(EXIT_MISSING_INPUT), str(EXIT_BAD_CONFIG), str(EXIT_DATA_QUALITY)]
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", EXECUTE, str(ROOT / "dags" / "precision_marketing.py"),
         str(app), *codes],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "0": "succeeded",
        "4": "skipped",
        "2": "failed",
        "3": "failed",
    }

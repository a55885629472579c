"""precision-marketing: every job of the suite as one SparkSubmitOperator, in data-flow order.

Each task submits jobs/<job>.py for the run date `{{ ds }}` with the same package, Delta JARs
and Spark conf that ./spark-submit.sh builds: the first task, `package`, asks the project's own
code for them (`python -m precision_marketing.submit --airflow`), so every task of a DAG run
ships the same snapshot of the code, and nothing here imports pyspark or reads config while
the DAG is parsed.

Settings (Airflow Variables; environment variables AIRFLOW_VAR_<NAME> work too):
- `pm_project_dir`: the checkout with .venv/, .jars/ and conf/ (default: this file's repo)
- `pm_env`: the conf/<env>.yaml the jobs load (default `local`); per run also the `env` param
- `pm_spark_conn_id`: the Spark connection giving the master (default `spark_default`)
The pinned pyspark's `spark-submit` must be first on the worker's PATH (<project>/.venv/bin).

`validate` exits 3 when a `fail` data-quality rule stops the run: the task fails without retry
(bad data does not heal by waiting), and nothing downstream runs.

A stage without its input (a catalog of views has no order lines to label for propensity)
exits 4: its task is skipped, not failed, and not retried. Every job task runs when its
upstream tasks succeeded or were skipped (`none_failed`): a shop without order lines still gets
segments and recommendations published, and each stage checks its own inputs first. In YARN
cluster mode spark-submit reports the application's final state, not the driver's exit code, so
a stage without input fails its task there.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, Variable, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.task.trigger_rule import TriggerRule

PROJECT_DIR = Variable.get("pm_project_dir", default=str(Path(__file__).resolve().parents[1]))
DEFAULT_ENV = Variable.get("pm_env", default="local")
SPARK_CONN_ID = Variable.get("pm_spark_conn_id", default="spark_default")

# Each job with the jobs whose outputs it reads (the direct edges of the data flow).
UPSTREAM: dict[str, list[str]] = {
    "ingest": [],
    "validate": ["ingest"],
    "silver": ["validate"],
    "features": ["silver"],
    "segment": ["features"],
    "propensity": ["features"],
    # Silver interactions, and gold/segments for the segment-popular fallback.
    "recommend": ["segment"],
    # user_features, segments, recommendations and propensity of the run date.
    "publish": ["segment", "recommend", "propensity"],
    # Audiences and campaign runs, against silver order lines.
    "measure": ["publish"],
    # Realized quality of past scorings and input drift; last, after everything is written.
    "monitor": ["measure"],
}
# A data-quality stop is not transient: retrying validate would only fail again.
NO_RETRY = {"validate"}
# precision_marketing.cli.EXIT_MISSING_INPUT (not imported: parsing the DAG loads no pyspark).
EXIT_MISSING_INPUT = 4


class StageSubmit(SparkSubmitOperator):
    """A job's spark-submit; the stage's "no input" exit skips the task instead of failing it."""

    def execute(self, context: Any) -> None:
        try:
            super().execute(context)
        except AirflowException as exc:
            # The hook keeps the spark-submit process; its code is the driver's exit code.
            process = getattr(self._hook, "_submit_sp", None)
            if process is not None and process.returncode == EXIT_MISSING_INPUT:
                raise AirflowSkipException(f"{self.task_id}: no input (see the task log)") from exc
            raise


def _package(env: str) -> dict[str, str]:
    """The shipped package, JARs and a Spark properties file, built by the project's code."""
    result = subprocess.run(
        [
            f"{PROJECT_DIR}/.venv/bin/python",
            "-m",
            "precision_marketing.submit",
            "--airflow",
            "--env",
            env,
        ],
        cwd=PROJECT_DIR,
        # This checkout's code, whatever else the venv may point at.
        env={**os.environ, "PYTHONPATH": f"{PROJECT_DIR}/lib"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"packaging failed ({result.returncode}):\n{result.stderr[-3000:]}")
    spec: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return spec


def _packaged(key: str) -> str:
    return f"{{{{ ti.xcom_pull(task_ids='package')['{key}'] }}}}"


default_args: dict[str, Any] = {
    "owner": "precision-marketing",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
}

with DAG(
    dag_id="precision_marketing",
    description="ingest -> validate -> silver -> features -> models -> publish -> measure, monitor",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={"env": Param(DEFAULT_ENV, type="string", description="conf/<env>.yaml")},
    tags=["precision-marketing", "spark"],
) as dag:
    package = task(task_id="package", retries=1)(_package)(env="{{ params.env }}")

    jobs = {
        job: StageSubmit(
            task_id=job,
            conn_id=SPARK_CONN_ID,
            application=f"{PROJECT_DIR}/jobs/{job}.py",
            application_args=["--env", "{{ params.env }}", "--run-date", "{{ ds }}"],
            name=f"{_packaged('app_name')}:{job}",
            py_files=_packaged("py_files"),
            jars=_packaged("jars"),
            properties_file=_packaged("properties_file"),
            env_vars={
                "PM_CONF_DIR": f"{PROJECT_DIR}/conf",
                "PYSPARK_PYTHON": f"{PROJECT_DIR}/.venv/bin/python",
                "PYSPARK_DRIVER_PYTHON": f"{PROJECT_DIR}/.venv/bin/python",
            },
            retries=0 if job in NO_RETRY else default_args["retries"],
            trigger_rule=TriggerRule.ALL_SUCCESS if job == "ingest" else TriggerRule.NONE_FAILED,
        )
        for job in UPSTREAM
    }
    package >> jobs["ingest"]
    for job, upstream in UPSTREAM.items():
        for before in upstream:
            jobs[before] >> jobs[job]

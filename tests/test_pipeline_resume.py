"""pipeline: outcomes in ops/pipeline_runs, resuming at the failed step, forced starts, summary.

The resume tests run probe stages registered only here: each notes that it ran and fails while
its input file under the landing folder says "broken", so a test breaks an input, runs, fixes
it and runs again. The summary test reads the warehouse the real stages built on generated data
(tests/pipeline_fixture.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing import pipeline
from precision_marketing.cli import STAGES, Stage
from precision_marketing.config import Config, ConfigError
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import DataQualityError, JobContext, MissingInputError
from precision_marketing.segment import job as segment_job
from tests.pipeline_fixture import Warehouse, pipeline_warehouse
from tests.support import RUN_DATE, make_config, run_stage

ROOT = Path(__file__).parents[1]
PROBES = ("probe_a", "probe_b", "probe_c")
ran: list[str] = []  # the probes that ran, in order, in this process
SLOW = 0.5  # seconds a 'slow' probe takes


@dataclass(frozen=True)
class Probe(Stage):
    """A stage that fails while its input file reads 'broken' ('bad data': a DQ stop;
    'missing': its input is absent; 'slow': it takes SLOW seconds and succeeds)."""

    name: str = ""

    def run(self, ctx: JobContext) -> None:
        ran.append(self.name)
        marker = Path(ctx.config.storage.landing) / f"{self.name}.txt"
        state = marker.read_text().strip() if marker.exists() else "ok"
        if state == "broken":
            raise RuntimeError(f"{self.name}: input is broken")
        if state == "bad data":
            raise DataQualityError(f"{self.name}: a fail rule did not hold")
        if state == "slow":
            time.sleep(SLOW)
        if state == "missing":
            raise MissingInputError(f"{self.name} needs probe/input (a test); it is empty: fill it")


def register_probes() -> None:
    for name in PROBES:
        STAGES[name] = Probe(__name__, name=name)


@pytest.fixture
def probes() -> Iterator[None]:
    register_probes()
    ran.clear()
    yield
    for name in PROBES:
        STAGES.pop(name, None)


def probe_config(tmp: Path) -> Config:
    (tmp / "landing").mkdir(parents=True, exist_ok=True)
    return make_config(tmp, f"pipeline.steps=[{','.join(PROBES)}]")


def set_input(config: Config, probe: str, state: str) -> None:
    (Path(config.storage.landing) / f"{probe}.txt").write_text(state)


def run_pipeline(spark: SparkSession, config: Config, **options: object) -> JobContext:
    with redirect_stdout(io.StringIO()):
        return run_stage(spark, config, "pipeline", RUN_DATE, **options)


def attempt(spark: SparkSession, config: Config, run_id: str) -> dict[str, tuple[str, str | None]]:
    """step -> (status, error) of one attempt, from ops/pipeline_runs."""
    rows = (
        tables.read(spark, tables.table_path(config, Layer.OPS, "pipeline_runs"))
        .where(F.col("pipeline_run_id") == run_id)
        .collect()
    )
    return {r["step"]: (r["status"], r["error"]) for r in rows}


def latest_run_id(spark: SparkSession, config: Config) -> str:
    runs = tables.read(spark, tables.table_path(config, Layer.OPS, "pipeline_runs"))
    row = runs.orderBy(F.col("finished_at").desc()).select("pipeline_run_id").first()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("previous", "from_step", "resume", "expected"),
    [
        (None, None, True, 0),
        ({"a": "succeeded", "b": "failed"}, None, True, 1),
        ({"a": "succeeded"}, None, True, 1),  # the driver died during b: no row for it
        ({"a": "skipped", "b": "succeeded", "c": "failed"}, None, True, 2),
        ({"a": "succeeded", "b": "succeeded", "c": "succeeded"}, None, True, 0),
        ({"a": "succeeded", "b": "no_input", "c": "failed"}, None, True, 2),  # no_input is done
        ({"a": "succeeded", "b": "no_input", "c": "no_input"}, None, True, 0),
        ({"a": "succeeded", "b": "failed"}, None, False, 0),
        ({"a": "succeeded", "b": "failed"}, "c", True, 2),
        (None, "b", True, 1),
    ],
)
def test_first_step(
    previous: dict[str, str] | None, from_step: str | None, resume: bool, expected: int
) -> None:
    assert pipeline.first_step(["a", "b", "c"], previous, from_step, resume) == expected


def test_from_step_must_be_a_configured_step() -> None:
    with pytest.raises(ConfigError, match=r"'nope' is not in pipeline\.steps"):
        pipeline.first_step(["a", "b"], None, "nope")


def test_a_failed_step_is_recorded_and_the_next_attempt_resumes_there(
    spark: SparkSession, tmp_path: Path, probes: None
) -> None:
    config = probe_config(tmp_path)
    set_input(config, "probe_b", "broken")
    with pytest.raises(RuntimeError, match="probe_b: input is broken"):
        run_pipeline(spark, config)
    assert ran == ["probe_a", "probe_b"]
    first = attempt(spark, config, latest_run_id(spark, config))
    assert first == {
        "probe_a": ("succeeded", None),
        "probe_b": ("failed", "RuntimeError: probe_b: input is broken"),
    }

    set_input(config, "probe_b", "ok")
    ran.clear()
    second = run_pipeline(spark, config)
    assert ran == ["probe_b", "probe_c"]
    assert attempt(spark, config, second.run_id) == {
        "probe_a": ("skipped", None),
        "probe_b": ("succeeded", None),
        "probe_c": ("succeeded", None),
    }

    # After a complete attempt, a rerun runs everything again (probe_b takes SLOW seconds).
    set_input(config, "probe_b", "slow")
    ran.clear()
    third = run_pipeline(spark, config)
    assert ran == list(PROBES)
    assert {s for s, _ in attempt(spark, config, third.run_id).values()} == {"succeeded"}

    runs = tables.read(spark, tables.table_path(config, Layer.OPS, "pipeline_runs"))
    third_b = (F.col("step") == "probe_b") & (F.col("pipeline_run_id") == third.run_id)
    row = runs.where(third_b).first()
    assert row is not None
    assert row["run_date"] == RUN_DATE
    assert row["step_no"] == 2
    assert SLOW <= row["seconds"] < SLOW + 0.5  # the probe's sleep and no more than bookkeeping
    wall = (row["finished_at"] - row["started_at"]).total_seconds()
    assert wall == pytest.approx(row["seconds"], abs=0.01)


def test_a_step_without_input_is_recorded_the_run_goes_on_and_resume_counts_it_done(
    spark: SparkSession, tmp_path: Path, probes: None
) -> None:
    config = probe_config(tmp_path)
    set_input(config, "probe_b", "missing")
    set_input(config, "probe_c", "broken")
    printed = io.StringIO()
    with redirect_stdout(printed), pytest.raises(RuntimeError, match="probe_c: input is broken"):
        run_stage(spark, config, "pipeline", RUN_DATE)
    assert ran == ["probe_a", "probe_b", "probe_c"]
    missing = "probe_b needs probe/input (a test); it is empty: fill it"
    assert attempt(spark, config, latest_run_id(spark, config)) == {
        "probe_a": ("succeeded", None),
        "probe_b": ("no_input", missing),
        "probe_c": ("failed", "RuntimeError: probe_c: input is broken"),
    }
    steps = re.findall(r"^  (probe_\w) +(\w[\w ]*?) +([\d.]+|-)(.*)$", printed.getvalue(), re.M)
    assert [(name, status, tail) for name, status, _, tail in steps] == [
        ("probe_a", "succeeded", ""),
        ("probe_b", "no_input", "  needs probe/input"),
        ("probe_c", "failed", ""),
    ]
    assert f"  probe_b no_input: {missing}" in printed.getvalue()

    set_input(config, "probe_c", "ok")
    ran.clear()
    second = run_pipeline(spark, config)
    assert ran == ["probe_c"]
    assert attempt(spark, config, second.run_id) == {
        "probe_a": ("skipped", None),
        "probe_b": ("skipped", None),
        "probe_c": ("succeeded", None),
    }


def test_from_step_and_no_resume_override_the_resume_point(
    spark: SparkSession, tmp_path: Path, probes: None
) -> None:
    config = probe_config(tmp_path)
    set_input(config, "probe_c", "broken")
    with pytest.raises(RuntimeError):
        run_pipeline(spark, config)
    ran.clear()
    with pytest.raises(RuntimeError):
        run_pipeline(spark, config, no_resume=True)
    assert ran == list(PROBES)

    set_input(config, "probe_c", "ok")
    ran.clear()
    forced = run_pipeline(spark, config, from_step="probe_b")
    assert ran == ["probe_b", "probe_c"]
    assert attempt(spark, config, forced.run_id)["probe_a"] == ("skipped", None)


def test_a_data_quality_stop_keeps_exit_code_3_and_prints_the_steps(tmp_path: Path) -> None:
    """Through the real command-line entry point, in its own process (it stops its session)."""
    config = probe_config(tmp_path)
    set_input(config, "probe_b", "bad data")
    storage = [f"storage.{k}={tmp_path}/{k}" for k in ("landing", "warehouse", "ground_truth")]
    args = ["--env", "test", "--run-date", RUN_DATE.isoformat()]
    args += [a for s in [*storage, f"pipeline.steps=[{','.join(PROBES)}]"] for a in ("--set", s)]
    code = (
        "import sys; from tests.test_pipeline_resume import register_probes; "
        "from precision_marketing.cli import main; register_probes(); "
        f"sys.exit(main('pipeline', {args!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{ROOT}/lib:{ROOT}"},
    )
    assert result.returncode == 3, result.stderr[-3000:]
    steps = re.findall(r"^  (probe_\w) +(\w[\w ]*?) +[\d.]*$", result.stdout, re.M)
    assert steps == [("probe_a", "succeeded"), ("probe_b", "failed"), ("probe_c", "not run")]
    assert "probe_b failed: DataQualityError: probe_b: a fail rule did not hold" in result.stdout


# ------------------------------------------------------------------------------------------
# The summary of a real run: 100 generated customers through every registered stage.


@pytest.fixture(scope="module")
def warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return pipeline_warehouse(spark, tmp_path_factory)


def summary_rows(summary: str) -> dict[str, int]:
    return {
        name: int(rows.replace(",", ""))
        for name, rows in re.findall(r"^  (\w+/\w+) +([\d,]+)$", summary, re.M)
    }


def test_summary_lists_every_step_as_succeeded(warehouse: Warehouse) -> None:
    steps = re.findall(r"^  (\w+) +(succeeded|failed|skipped|not run) +", warehouse.summary, re.M)
    assert steps == [(s, "succeeded") for s in warehouse.steps]


def test_summary_counts_equal_the_tables(spark: SparkSession, warehouse: Warehouse) -> None:
    config = warehouse.config
    counted = summary_rows(warehouse.summary)

    def rows(layer: Layer, name: str, snapshot: bool) -> int:
        df = tables.read(spark, tables.table_path(config, layer, name))
        return (df.where(F.col("as_of_date") == F.lit(RUN_DATE)) if snapshot else df).count()

    assert counted["silver/customers"] == config.generate.customers == 100
    assert counted["silver/order_lines"] == rows(Layer.SILVER, "order_lines", False)
    assert counted["bronze/events"] == rows(Layer.BRONZE, "events", False)
    assert counted["gold/user_features"] == 100
    assert counted["gold/segments"] == 100
    assert counted["gold/recommendations"] == rows(Layer.GOLD, "recommendations", True)
    assert counted["gold/recommendations"] == 100 * config.recommend.top_n  # each customer N


def test_summary_metrics_and_reports(spark: SparkSession, warehouse: Warehouse) -> None:
    summary, config = warehouse.summary, warehouse.config
    profiles = tables.read(spark, tables.table_path(config, Layer.GOLD, "segment_profiles"))
    k = profiles.where(F.col("as_of_date") == F.lit(RUN_DATE)).count()
    # The figures shown are the stored ones: the segment model's metadata and the recommend
    # metrics of the run date (conf/test.yaml's eval_k ends at 3).
    meta = json.loads(
        (
            Path(segment_job.model_dir(config, segment_job.model_version(config.segment, RUN_DATE)))
            / "metadata.json"
        ).read_text()
    )
    assert meta["params"]["k"] == k
    assert f"\n  segment: k={k}, silhouette {meta['metrics']['silhouette']:.3f}\n" in summary
    ndcg = {
        r["model"]: r["value"]
        for r in tables.read(spark, tables.table_path(config, Layer.OPS, "recommend_metrics"))
        .where((F.col("as_of_date") == F.lit(RUN_DATE)) & (F.col("metric") == "ndcgAtK"))
        .where(F.col("chosen") & (F.col("k") == 3))
        .collect()
    }
    shown = re.search(r"^  recommend: NDCG@3: (.*)$", summary, re.M)
    assert shown, summary
    assert shown.group(1).startswith("als ")  # ALS first, then the others by name
    assert dict(p.split(" ") for p in shown.group(1).split(", ")) == {
        model: f"{value:.4f}" for model, value in ndcg.items()
    }
    pages = dict(re.findall(r"^  (\w+): (\S+/index\.html)$", summary, re.M))
    assert {"validate", "segment", "recommend"} <= set(pages)
    for page in pages.values():
        assert Path(page.removeprefix("file:")).is_file(), page

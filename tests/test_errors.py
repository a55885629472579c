"""Mistakes a person can fix end in one line and exit 2 (5 for a busy warehouse), before Spark.

Each kind runs through both front ends in this process: submit.main (what ./spark-submit.sh
calls before the JVM starts) and cli.main (the job itself). Neither starts Spark for these, so
the whole file takes seconds; one subprocess checks the real ./spark-submit.sh output.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from delta.exceptions import ConcurrentAppendException

from precision_marketing import cli, submit
from precision_marketing.config import CONF_DIR_ENV
from precision_marketing.io.lock import warehouse_lock
from tests.support import make_config

ROOT = Path(__file__).parents[1]
CONF = ROOT / "conf"
SEE_CONFIG = "(see conf/base.yaml and README.md#configuration)"
BAD_SOURCES = "sources:\n  clicks: {folder: clicks}\n"


def kinds(tmp: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """kind -> (job and arguments, environment, the one line it must print)."""
    return {
        "unknown key in --set": (
            ["ingest", "--env", "test", "--set", "storage.warehuse=/x"],
            {},
            "ingest: configuration error: unknown key 'storage.warehuse' (allowed under "
            f"storage: ground_truth, landing, lock_wait_seconds, warehouse) {SEE_CONFIG}",
        ),
        "bad value type": (
            ["ingest", "--env", "test", "--set", "generate.customers=many"],
            {},
            "ingest: configuration error: 'generate.customers': expected an integer, got "
            f"'many' {SEE_CONFIG}",
        ),
        "--set without a value": (
            ["ingest", "--env", "test", "--set", "storage.warehouse"],
            {},
            "ingest: configuration error: --set expects key=value, got 'storage.warehouse' "
            + SEE_CONFIG,
        ),
        "missing conf directory": (
            ["ingest", "--env", "test"],
            {CONF_DIR_ENV: str(tmp / "none")},
            f"ingest: configuration error: {CONF_DIR_ENV}={tmp}/none: no base.yaml there "
            f"(see ${CONF_DIR_ENV}, or unset it to use ./conf)",
        ),
        "bad run date": (
            ["ingest", "--env", "test", "--run-date", "2026-13-01"],
            {},
            "ingest: argument error: argument --run-date: '2026-13-01' is not a date: "
            "expected YYYY-MM-DD, e.g. 2026-06-30 (see ingest --help)",
        ),
        "unknown option": (
            ["ingest", "--env", "test", "--colour"],
            {},
            "ingest: argument error: unrecognized arguments: --colour (see ingest --help)",
        ),
        "unknown pipeline step": (
            ["pipeline", "--env", "test", "--set", "pipeline.steps=[ingest,nosuch]"],
            {},
            "pipeline: configuration error: pipeline.steps: unknown stage 'nosuch' (stages: "
            "generate, ingest, validate, silver, features, segment, recommend, propensity, "
            "publish, measure, monitor, simulate_response) (see pipeline.steps in conf/base.yaml)",
        ),
        "unknown --from-step": (
            ["pipeline", "--env", "test", "--from-step", "nosuch"],
            {},
            "pipeline: configuration error: --from-step: 'nosuch' is not in pipeline.steps "
            f"['ingest', 'validate', 'silver'] {SEE_CONFIG}",
        ),
        "unknown env": (
            ["ingest", "--env", "prod"],
            {},
            f"ingest: configuration error: unknown env 'prod': no {CONF}/prod.yaml (known: "
            f"local, test, yarn) {SEE_CONFIG}",
        ),
        "bad sources.yaml": (
            ["ingest", "--env", "test", "--set", f"ingest.sources_file={tmp}/bad-sources.yaml"],
            {},
            f"ingest: configuration error: {tmp}/bad-sources.yaml: unknown source "
            "'sources.clicks' (known: catalog, crm, events, transactions) "
            "(see docs/bring-your-own-data.md)",
        ),
        "missing expectation suite": (
            ["validate", "--env", "test", "--set", f"validate.expectations_dir={tmp}"],
            {},
            f"validate: configuration error: no expectation suite for table 'events' at "
            f"{tmp}/events.yaml (see conf/expectations/ and docs/data-contract.md)",
        ),
        "missing campaigns file": (
            ["publish", "--env", "test", "--set", f"publish.campaigns_file={tmp}/none.yaml"],
            {},
            f"publish: configuration error: none.yaml: cannot read {tmp}/none.yaml: [Errno 2] "
            f"No such file or directory: '{tmp}/none.yaml' (see conf/campaigns.yaml and "
            "README.md)",
        ),
    }


KINDS = list(kinds(Path("/unused")))


def _environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp: Path) -> None:
    (tmp / "bad-sources.yaml").write_text(BAD_SOURCES)
    monkeypatch.delenv(CONF_DIR_ENV, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("kind", KINDS)
def test_each_mistake_is_one_line_and_exit_2(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (job, *args), env, line = kinds(tmp_path)[kind]
    _environment(monkeypatch, env, tmp_path)

    assert submit.main([job, *args]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", line + "\n")

    assert cli.main(job, args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].endswith(f" ERROR precision_marketing: {line}"), err


def test_missing_salt_stops_the_job_before_spark(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The salt lives in the driver's environment: submit.py (which may run elsewhere, YARN
    cluster mode) leaves it to the job, which stops before building a session."""
    monkeypatch.delenv("PM_PII_SALT", raising=False)
    args = ["--env", "test", "--set", "pii.dev_salt=null"]
    assert cli.main("silver", args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].endswith(
        " ERROR precision_marketing: silver: configuration error: environment variable "
        "PM_PII_SALT is not set: it holds the PII salt (env 'test' has no development salt) "
        "(see the PII salt in README.md#configuration)"
    ), err


def test_verbose_adds_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (job, *args), env, line = kinds(tmp_path)["bad sources.yaml"]
    _environment(monkeypatch, env, tmp_path)
    assert submit.main([job, *args, "--verbose"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert "precision_marketing.config.ConfigError:" in err
    assert err.endswith(line + "\n")
    assert cli.main(job, [*args, "--verbose"]) == 2
    err = capsys.readouterr().err
    assert line in err.splitlines()[0]
    assert "Traceback (most recent call last):" in err


def test_spark_submit_sh_prints_only_the_line() -> None:
    for args, line in (
        (
            ["ingest", "--env", "test", "--run-date", "2026-13-01"],
            kinds(Path("/x"))["bad run date"][2],
        ),
        (["no_such_job"], None),
    ):
        result = subprocess.run(
            [str(ROOT / "spark-submit.sh"), *args], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0] == line if line else "no job 'no_such_job' (jobs: " in lines[0]


def test_a_busy_warehouse_stops_the_second_run_with_exit_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, "storage.lock_wait_seconds=1")
    storage = [
        "--env",
        "test",
        "--set",
        f"storage.landing={tmp_path}/landing",
        "--set",
        f"storage.warehouse={tmp_path}/warehouse",
        "--set",
        f"storage.ground_truth={tmp_path}/ground_truth",
        "--set",
        "storage.lock_wait_seconds=1",
    ]
    with warehouse_lock(config, "silver", "silver_run_1"):
        assert cli.main("ingest", storage) == cli.EXIT_BUSY
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err  # "waiting up to 1s", then the refusal
    assert re.fullmatch(
        r"\S+ \S+ ERROR precision_marketing: ingest: warehouse busy: silver \(run silver_run_1, "
        rf"pid {os.getpid()} on {re.escape(socket.gethostname())}, since \S+\) holds "
        rf"{tmp_path}/warehouse/ops/\.run\.lock \(waited 1s\); this run wrote nothing: run "
        r"it again when that one has finished, or set storage\.lock_wait_seconds to wait for it",
        err[-1],
    ), err[-1]
    # Released with the block: the next holder gets it at once.
    with warehouse_lock(config, "ingest", "ingest_run_2"):
        pass


def test_a_delta_write_conflict_is_one_line_with_exit_5() -> None:
    conflict = ConcurrentAppendException(
        message="[DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a "
        "concurrent update. Please try the operation again.\nmore detail"
    )
    line, code = cli.refusal("silver", conflict) or ("", 0)
    assert code == cli.EXIT_BUSY
    assert line == (
        "silver: write conflict: another run wrote the same Delta table at the same time "
        "([DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a concurrent "
        "update. Please try the operation again.); this run's tables were left as they were: "
        "run it again when the other has finished (see docs/reruns.md)"
    )
    assert cli.refusal("silver", RuntimeError("boom")) is None

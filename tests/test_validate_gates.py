"""Quality gates: a `fail` rule stops the run and leaves downstream as it was; bad suites."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import ConfigError
from precision_marketing.io import tables, watermarks
from precision_marketing.io.tables import Layer
from precision_marketing.runtime import DataQualityError
from precision_marketing.validate.suites import Conflict, Suite, load_suite, with_conflict_flags
from tests.support import make_config, run_stage
from tests.tiny_landing import write_tiny_landing

CONF_EXPECTATIONS = Path(__file__).parents[1] / "conf" / "expectations"


def suites_with(tmp: Path, table: str, rule: str, **changes: object) -> Path:
    """A copy of conf/expectations with one rule of one suite changed."""
    target = tmp / "expectations"
    shutil.copytree(CONF_EXPECTATIONS, target)
    path = target / f"{table}.yaml"
    suite = yaml.safe_load(path.read_text())
    for expectation in suite["expectations"]:
        if expectation["rule"] == rule:
            expectation.update(changes)
    path.write_text(yaml.safe_dump(suite))
    return target


def test_fail_rule_stops_the_run_and_leaves_downstream_unchanged(
    spark: SparkSession, tmp_path: Path
) -> None:
    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)
    for stage in ("ingest", "validate", "silver"):
        run_stage(spark, config, stage)
    items = tables.table_path(config, Layer.SILVER, "items")
    quarantine = tables.table_path(config, Layer.QUARANTINE, "catalog")
    before = (tables.version(spark, items), tables.version(spark, quarantine))

    (tmp_path / "landing" / "catalog" / "catalog-2.csv").write_text(
        "item_id,title,category,brand,price,active,updated_at\n"
        "i5,Fine,toys,Kid,9,true,2026-06-10T00:00:00Z\n"
        "i6,Broken,toys,Kid,-1,true,2026-06-10T00:00:00Z\n"
    )
    strict_suites = suites_with(tmp_path, "catalog", "catalog_price_in_range", severity="fail")
    strict = make_config(tmp_path, f"validate.expectations_dir={strict_suites}")
    run_stage(spark, strict, "ingest")
    with pytest.raises(DataQualityError) as failure:
        run_stage(spark, strict, "validate")
    assert str(failure.value) == (
        "table 'catalog' expectation 'catalog_price_in_range' "
        "(expect_column_values_to_be_between) failed: 1 of 2 rows unexpected"
    )

    # On record in ops, but nothing downstream moved.
    results = tables.read(spark, tables.table_path(config, Layer.OPS, "validation_results"))
    failed = results.where(F.col("table_status") == "failed").select("table", "rule").distinct()
    assert sorted(map(tuple, failed.where("NOT success").collect())) == [
        ("catalog", "catalog_price_in_range")
    ]
    assert watermarks.get(spark, config, "validate", "catalog") == 1
    run_stage(spark, strict, "silver")
    assert (tables.version(spark, items), tables.version(spark, quarantine)) == before
    assert tables.read(spark, items).where("item_id IN ('i5', 'i6')").count() == 0


def test_a_rule_breaking_most_of_a_batch_stops_the_run_instead_of_quarantining(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Two of three new catalog rows out of range: over a 0.5 share that is a stop (nothing
    quarantined, the mark unmoved); a 0.7 share lets the same batch through with 2 quarantined."""
    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)
    for stage in ("ingest", "validate"):
        run_stage(spark, config, stage)
    (tmp_path / "landing" / "catalog" / "catalog-2.csv").write_text(
        "item_id,title,category,brand,price,active,updated_at\n"
        "i5,Fine,toys,Kid,9,true,2026-06-10T00:00:00Z\n"
        "i6,Broken,toys,Kid,-1,true,2026-06-10T00:00:00Z\n"
        "i7,Broken,toys,Kid,-2,true,2026-06-10T00:00:00Z\n"
    )
    run_stage(spark, config, "ingest")
    quarantine = tables.table_path(config, Layer.QUARANTINE, "catalog")
    before = tables.version(spark, quarantine)
    with pytest.raises(DataQualityError) as stop:
        run_stage(spark, make_config(tmp_path, "validate.max_quarantine_share=0.5"), "validate")
    assert str(stop.value) == (
        "table 'catalog' rule 'catalog_price_in_range' would quarantine 2 of 3 rows (67%, over "
        "validate.max_quarantine_share 0.5): check the source's mapping in sources.yaml "
        "(columns, timestamp_format, time_zone) or raise the share"
    )
    assert watermarks.get(spark, config, "validate", "catalog") == 1
    assert tables.version(spark, quarantine) == before

    run_stage(spark, make_config(tmp_path, "validate.max_quarantine_share=0.7"), "validate")
    assert watermarks.get(spark, config, "validate", "catalog") == 2
    held = tables.read(spark, quarantine).where("item_id IN ('i5', 'i6', 'i7')")
    assert sorted(r["item_id"] for r in held.collect()) == ["i6", "i7"]


def test_failed_stage_restores_every_table_it_touched(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    created = str(tmp_path / "created")
    tables.append(spark.range(3), path)

    def failing_stage() -> None:
        with tables.restored_on_failure(spark, [path, created]):
            tables.append(spark.range(10, 12), path)
            tables.append(spark.range(1), created)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_stage()
    assert sorted(r[0] for r in tables.read(spark, path).collect()) == [0, 1, 2]
    assert not tables.is_delta(spark, created)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": "block"}, "rule 'catalog_price_in_range': severity must be warn"),
        ({"sevrity": "warn"}, r"unknown key 'expectations\[2\]\.sevrity'"),
        (
            {"expectation": "expect_column_values_to_be_unique", "severity": "quarantine"},
            "would quarantine every copy",
        ),
    ],
)
def test_bad_suites_are_rejected_naming_the_rule(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    directory = suites_with(tmp_path, "catalog", "catalog_price_in_range", **change)
    with pytest.raises(ConfigError, match=message):
        load_suite(directory, "catalog")


def test_suite_without_a_well_formedness_gate_is_rejected(tmp_path: Path) -> None:
    directory = suites_with(tmp_path, "catalog", "well_formed_record", severity="warn")
    with pytest.raises(ConfigError, match="rule on _corrupt_record is required"):
        load_suite(directory, "catalog")


def test_a_crashing_silver_run_leaves_every_table_as_it_was(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """silver/events is merged before customers needs the PII salt; without it, all roll back."""
    write_tiny_landing(tmp_path / "landing")
    config = make_config(tmp_path)
    run_stage(spark, config, "ingest")
    run_stage(spark, config, "validate")
    monkeypatch.delenv("PM_PII_SALT", raising=False)
    with pytest.raises(ConfigError, match="PM_PII_SALT is not set"):
        run_stage(spark, make_config(tmp_path, "pii.dev_salt=null"), "silver")

    assert not tables.is_delta(spark, tables.table_path(config, Layer.SILVER, "events"))
    assert watermarks.get(spark, config, "silver", "events") == 0
    run_stage(spark, config, "silver")
    assert tables.read(spark, tables.table_path(config, Layer.SILVER, "events")).count() == 3


@pytest.mark.parametrize("max_collected", [10, 1, 0], ids=["collected", "window", "no keys"])
def test_copies_that_differ_within_a_batch_are_flagged_whoever_finds_them(
    spark: SparkSession, max_collected: int
) -> None:
    """The differing keys found by the aggregate (up to max_collected) flag exactly the rows
    the window flags (past it); keys a microsecond apart stay apart."""
    suite = Suite("t", [], conflicts={"consistent": Conflict(["k", "at"])})
    batch = spark.sql(
        "SELECT k, TIMESTAMP(at) AS at, v FROM VALUES "
        "('a', '2026-01-01 10:00:00.000001', '1'), ('a', '2026-01-01 10:00:00.000001', '2'), "
        "('a', '2026-01-01 10:00:00.000002', '1'), "  # another key: a microsecond later
        "('b', '2026-01-01 10:00:00', '1'), ('b', '2026-01-01 10:00:00', '1'), "  # copies
        "('c', '2026-01-01 10:00:00', '1'), ('c', '2026-01-01 10:00:00', '3'), "
        "(NULL, '2026-01-01 10:00:00', '1'), (NULL, '2026-01-01 10:00:00', '2') "  # no key
        "AS t(k, at, v)"
    )
    if max_collected == 0:  # no key differs: the flag is a constant
        batch = batch.where("k = 'b'")
    flagged = with_conflict_flags(batch, suite, ["k", "at", "v"], max_collected=max_collected)
    got = sorted(
        (r["k"] or "", r["at"].microsecond, r["v"], r["consistent"]) for r in flagged.collect()
    )
    expected = [
        ("", 0, "1", True),
        ("", 0, "2", True),
        ("a", 1, "1", False),
        ("a", 1, "2", False),
        ("a", 2, "1", True),
        ("b", 0, "1", True),
        ("b", 0, "1", True),
        ("c", 0, "1", False),
        ("c", 0, "3", False),
    ]
    assert got == (expected if max_collected else [e for e in expected if e[0] == "b"])


@pytest.mark.parametrize("broadcast_keys", [False, True], ids=["shuffled", "broadcast keys"])
def test_a_key_changed_since_an_earlier_batch_is_flagged_in_both_lookups(
    spark: SparkSession, broadcast_keys: bool
) -> None:
    """The earlier-batch lookup gives the same flags whether the batch's keys are broadcast
    (a daily batch) or the history is aggregated as a whole (a backfill)."""
    suite = Suite("t", [], conflicts={"unchanged": Conflict(["k"], earlier=True)})
    earlier = spark.createDataFrame(
        [("a", "1"), ("b", "1"), ("b", "1"), ("c", "1"), ("d", "1")], "k string, v string"
    )
    batch = spark.createDataFrame(
        [("a", "1"), ("b", "2"), ("c", "1"), ("c", "2"), ("e", "9"), (None, "1")],
        "k string, v string",
    )
    flagged = with_conflict_flags(batch, suite, ["k", "v"], earlier, broadcast_keys)
    got = sorted((r["k"] or "", r["v"], r["unchanged"]) for r in flagged.collect())
    assert got == [
        ("", "1", True),  # no key: nothing to compare
        ("a", "1", True),  # the same content again
        ("b", "2", False),  # other content than before
        ("c", "1", True),
        ("c", "2", False),  # within the batch, only the differing copy breaks with the past
        ("e", "9", True),  # a new key
    ]

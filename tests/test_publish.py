"""The publish stage on a tiny hand-made warehouse (tests/publish_fixture.py), and its
policy and holdout transforms on small frames."""

from __future__ import annotations

import json
import logging
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.publish import exports, policy
from precision_marketing.publish.audience import holdout_bucket
from precision_marketing.publish.campaigns import parse_campaign
from precision_marketing.publish.job import load_suppression, publish
from precision_marketing.publish.manifest import read_manifest, rebuild_audience
from precision_marketing.runtime import MissingInputError
from tests import publish_fixture as fx
from tests.support import context, make_config, run_stage

D = fx.D
KEY = ("campaign_id", "customer_id")


def activation(spark: SparkSession, config: Config, name: str) -> DataFrame:
    return tables.read(spark, tables.table_path(config, Layer.ACTIVATION, name))


def rows(df: DataFrame) -> list[dict[str, Any]]:
    """Fixture-sized frames only (tens of rows)."""
    return [r.asDict() for r in df.collect()]


def by_key(found: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["campaign_id"], r["customer_id"]): r for r in found}


def without_run_id(found: list[dict[str, Any]]) -> list[str]:
    """Rows as comparable text (values may be None), the run id left out."""
    return sorted(repr(sorted((k, v) for k, v in r.items() if k != "run_id")) for r in found)


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """publish D, publish D again, then the inputs change."""
    tmp = tmp_path_factory.mktemp("activation")
    config = make_config(tmp, f"publish.campaigns_file={fx.write_campaigns(tmp)}")
    fx.write_world(spark, config)
    run_stage(spark, config, "publish", D)
    first_rows = rows(activation(spark, config, "audiences"))
    first_history = rows(activation(spark, config, "contact_history"))
    second = run_stage(spark, config, "publish", D)
    audiences = rows(activation(spark, config, "audiences"))
    history = rows(activation(spark, config, "contact_history"))
    runs = rows(activation(spark, config, "campaign_runs"))
    # After the run: K01 opts out of email, K03 gets two contacts elsewhere, and a new
    # propensity snapshot dated D ranks K19 first.
    consent = {**fx.CONSENT, "K01": (False, True, True)}
    fx._save(spark, config, Layer.SILVER, "customers", fx.customers_rows(consent), fx.CUSTOMERS)
    tables.append(
        spark.createDataFrame(
            [("K03", "other", "sms", D - timedelta(days=n), "publish_other") for n in (1, 2)],
            fx.CONTACT_HISTORY,
        ),
        tables.table_path(config, Layer.ACTIVATION, "contact_history"),
    )
    rescored = {**fx.PROPENSITY_ROWS, "K19": (1, 95.0)}
    tables.append(
        spark.createDataFrame(fx.propensity_rows(rescored, D), fx.PROPENSITY),
        tables.table_path(config, Layer.GOLD, "propensity"),
    )
    return {
        "config": config,
        "second": second,
        "first_rows": first_rows,
        "first_history": first_history,
        "audiences": audiences,
        "history": history,
        "runs": runs,
    }


def test_excluded_customers_carry_the_right_reason(world: dict) -> None:
    found = by_key(world["audiences"])
    email = {c: r for (camp, c), r in found.items() if camp == "email-fans"}
    # K13 (a fan without recommendations) does not match the rule at all.
    assert sorted(email) == sorted(c for c in fx.FANS if c != fx.NO_RECS)
    reasons = {c: r["excluded_reason"] for c, r in email.items() if r["excluded_reason"]}
    assert reasons == {
        "K05": policy.FREQUENCY_CAP,
        "K09": policy.NO_CONSENT,
        "K10": policy.NO_CONSENT,
        "K11": policy.SUPPRESSED,
        "K12": policy.SUPPRESSED,
    }
    assert all(email[c]["group"] is None for c in reasons)
    eligible = {c for c, r in email.items() if r["group"] is not None}
    assert eligible == set(fx.EMAIL_ELIGIBLE)  # K06's second contact is 7 days old; K14: sms
    groups = {r["group"] for c, r in email.items() if c in eligible}
    assert groups == {policy.TREATMENT, policy.CONTROL}


def test_no_opted_out_or_suppressed_customer_in_any_group(world: dict) -> None:
    suppressed = {("K11", "email"), ("K12", None), ("K14", "sms")}
    consent_index = {"email": 0, "sms": 1, "push": 2}
    checked = 0
    for r in world["audiences"]:
        consent = fx.CONSENT.get(r["customer_id"], (True, True, True))[consent_index[r["channel"]]]
        blocked = {(r["customer_id"], r["channel"]), (r["customer_id"], None)} & suppressed
        if consent is not True or blocked:
            checked += 1
            assert r["group"] is None, r
            assert r["excluded_reason"] in (policy.NO_CONSENT, policy.SUPPRESSED), r
    assert checked == 6  # K09, K10, K11, K12 (email), K15 (sms), K23 (push)


def test_frequency_cap_counts_history_and_earlier_campaigns_of_the_run(world: dict) -> None:
    found = by_key(world["audiences"])
    assert found[("email-fans", "K05")]["excluded_reason"] == policy.FREQUENCY_CAP
    assert found[("email-fans", "K06")]["group"] in (policy.TREATMENT, policy.CONTROL)
    # K16: one contact at D-3 plus sms-budget today makes two: capped for push; K17 has one.
    assert found[("push-best", "K16")]["excluded_reason"] == policy.FREQUENCY_CAP
    assert found[("sms-budget", "K16")]["group"] == policy.TREATMENT
    push = {c: (r["group"], r["excluded_reason"]) for (camp, c), r in found.items()
            if camp == "push-best"}  # fmt: skip
    assert push == {
        "K16": (None, policy.FREQUENCY_CAP),
        "K17": (policy.TREATMENT, None),
        "K22": (policy.TREATMENT, None),
        "K23": (None, policy.NO_CONSENT),
    }  # the D snapshot's RFM: not D-7's (all Lost) nor D+5's (all Champions)


def test_budget_takes_the_highest_expected_values_that_fit(world: dict) -> None:
    sms = {r["customer_id"]: r for r in world["audiences"] if r["campaign_id"] == "sms-budget"}
    assert {c: (r["group"], r["excluded_reason"]) for c, r in sms.items()} == {
        "K15": (None, policy.NO_CONSENT),  # the highest value, but no sms consent
        "K16": (policy.TREATMENT, None),
        "K17": (policy.TREATMENT, None),
        "K18": (policy.TREATMENT, None),  # 0.1 x 3 fits 0.3 exactly; the tie with K17 by id
        "K19": (None, policy.OVER_BUDGET),
        "K20": (None, policy.OVER_BUDGET),
    }
    assert sum(r["contact_cost"] for r in sms.values()) == pytest.approx(0.3)
    # Deciles and values come from the D-1 snapshot, the latest on or before D.
    assert (sms["K19"]["propensity_decile"], sms["K19"]["expected_value"]) == (3, 60.0)


def test_rows_carry_recommendations_segment_and_cost(world: dict) -> None:
    found = by_key(world["audiences"])
    k01, k02 = found[("email-fans", "K01")], found[("email-fans", "K02")]
    assert [k01[f"rec_item_{n}"] for n in (1, 2, 3)] == ["I1", "I2", "I3"]
    assert [k01[f"rec_title_{n}"] for n in (1, 2, 3)] == ["Item 1", "Item 2", "Item 3"]
    assert [k02[f"rec_item_{n}"] for n in (1, 2, 3)] == ["I2", "I3", "I4"]
    assert (k01["segment_id"], k01["segment_name"], k01["rfm_segment"]) == (
        1,
        "Fans",
        "Hibernating",
    )
    for r in world["audiences"]:
        assert r["run_date"] == D
        assert r["run_id"] == world["second"].run_id
        expected = {"email-fans": 0.01, "sms-budget": 0.1, "push-best": 0.002}[r["campaign_id"]]
        assert r["contact_cost"] == (expected if r["group"] == policy.TREATMENT else 0.0)


def test_rerun_replaces_the_day_and_keeps_the_split(world: dict) -> None:
    assert without_run_id(world["audiences"]) == without_run_id(world["first_rows"])
    history = without_run_id(world["history"])
    assert history == without_run_id(world["first_history"])
    # Pre-seeded five, plus the treatment rows of the day: each once.
    treated = sorted(
        (r["customer_id"], r["campaign_id"])
        for r in world["audiences"]
        if r["group"] == policy.TREATMENT
    )
    today = sorted(
        (r["customer_id"], r["campaign_id"]) for r in world["history"] if r["contact_date"] == D
    )
    assert today == treated
    assert len(world["history"]) == len(fx.HISTORY) + len(treated)
    assert {r["run_id"] for r in world["history"] if r["contact_date"] == D} == {
        world["second"].run_id
    }


def test_campaign_runs_record_windows_costs_and_sizes(spark: SparkSession, world: dict) -> None:
    runs = {r["campaign_id"]: r for r in world["runs"]}
    assert sorted(runs) == ["email-fans", "push-best", "sms-budget"]
    sms = runs["sms-budget"]
    assert (sms["start_date"], sms["end_date"]) == (D, D)  # run_date..run_date resolved
    assert (sms["treatment_size"], sms["control_size"], sms["excluded_size"]) == (3, 0, 3)
    assert (sms["budget"], sms["cost_per_contact"], sms["max_audience_size"]) == (0.3, 0.1, None)
    email = runs["email-fans"]
    assert email["treatment_size"] + email["control_size"] == len(fx.EMAIL_ELIGIBLE)
    assert email["excluded_size"] == 5
    manifest = read_manifest(spark, email["manifest_path"])
    assert manifest.run_id == world["second"].run_id
    assert [c.id for c in manifest.campaigns] == ["email-fans", "sms-budget", "push-best"]
    assert manifest.inputs["gold/propensity"].as_of_date == (D - timedelta(days=1)).isoformat()
    assert manifest.inputs["gold/user_features"].as_of_date == D.isoformat()


def test_exports_hold_the_treatment_rows(spark: SparkSession, world: dict) -> None:
    config = world["config"]
    root = Path(tables.warehouse(config)) / "exports"
    listed = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert listed == sorted(
        f"{c}/{day}/{c}_{day}.{fmt}"
        for c, day in [("email-fans", D), ("sms-budget", D), ("push-best", D)]
        for fmt in ("csv", "parquet")
    )  # no staging or checksum files left behind
    folder = root / "sms-budget" / D.isoformat()
    csv = (folder / f"sms-budget_{D}.csv").read_text().splitlines()
    assert csv[0].split(",")[:4] == ["customer_id", "campaign_id", "run_date", "channel"]
    assert [line.split(",")[0] for line in csv[1:]] == ["K16", "K17", "K18"]
    parquet = spark.read.parquet(str(folder / f"sms-budget_{D}.parquet"))
    assert [r["customer_id"] for r in parquet.orderBy("customer_id").collect()] == [
        "K16",
        "K17",
        "K18",
    ]
    treated_email = {
        r["customer_id"]
        for r in world["audiences"]
        if r["campaign_id"] == "email-fans" and r["group"] == policy.TREATMENT
    }
    email = spark.read.option("header", True).csv(
        str(root / "email-fans" / D.isoformat() / f"email-fans_{D}.csv")
    )
    assert {r["customer_id"] for r in email.collect()} == treated_email


def test_manifest_rebuilds_the_audience_exactly(spark: SparkSession, world: dict) -> None:
    config = world["config"]
    run_id = world["second"].run_id
    path = f"{tables.table_path(config, Layer.ACTIVATION, 'manifests')}/{run_id}.json"
    rebuilt = rows(rebuild_audience(spark, config, path))
    stored = world["audiences"]
    assert len(rebuilt) == len(stored) == 23
    assert sorted(map(repr, rebuilt)) == sorted(map(repr, stored))
    # Read today, the inputs would decide otherwise: K01 has no email consent, K03 is at the
    # frequency cap, and K19 tops the propensity snapshot dated D.
    found = by_key(stored)
    assert found[("email-fans", "K01")]["group"] in (policy.TREATMENT, policy.CONTROL)
    assert found[("email-fans", "K03")]["group"] in (policy.TREATMENT, policy.CONTROL)
    assert found[("sms-budget", "K19")]["excluded_reason"] == policy.OVER_BUDGET
    customers = tables.table_path(config, Layer.SILVER, "customers")
    k01 = tables.read(spark, customers).where("customer_id = 'K01'").first()
    assert k01 is not None
    assert k01["consent_email"] is False
    pinned = json.loads(Path(path).read_text())["inputs"]
    assert tables.version(spark, customers) == pinned["silver/customers"]["version"] + 1


def test_publish_without_gold_snapshots_stops_before_any_write(
    spark: SparkSession, world: dict
) -> None:
    config = world["config"]
    paths = [
        tables.table_path(config, Layer.ACTIVATION, n)
        for n in ("audiences", "campaign_runs", "contact_history", "suppression")
    ]
    before = [tables.version(spark, p) for p in paths]
    expected = (
        f"publish needs gold/user_features on or before {D - timedelta(days=30)} "
        "(the customer base); it has no snapshot on or before"
    )
    with pytest.raises(MissingInputError, match=re.escape(expected)):
        run_stage(spark, config, "publish", D - timedelta(days=30))
    assert [tables.version(spark, p) for p in paths] == before


def test_a_failed_publish_leaves_tables_as_they_were(spark: SparkSession, world: dict) -> None:
    """A month earlier no gold snapshot exists: past the input check (which would stop it
    first), the run fails after loading the suppression list (its first write) and before
    writing a manifest."""
    config = world["config"]
    paths = {
        n: tables.table_path(config, Layer.ACTIVATION, n)
        for n in ("audiences", "campaign_runs", "contact_history", "suppression")
    }
    before = {n: tables.version(spark, p) for n, p in paths.items()}
    with pytest.raises(RuntimeError, match="gold/user_features has no snapshot on or before"):
        # sms-budget sends any day
        publish(context(config, D - timedelta(days=30)))
    after = {n: tables.version(spark, p) for n, p in paths.items()}
    suppression_version = before["suppression"]
    assert suppression_version is not None
    assert after == {**before, "suppression": suppression_version + 2}
    (last,) = DeltaTable.forPath(spark, paths["suppression"]).history(1).collect()
    assert last["operation"] == "RESTORE"
    assert last["operationParameters"]["version"] == str(suppression_version)
    manifests = Path(tables.table_path(config, Layer.ACTIVATION, "manifests"))
    assert len(list(manifests.glob("*.json"))) == 2  # the two runs of the day


def test_export_swap_puts_every_target_back_on_failure(spark: SparkSession, tmp_path: Path) -> None:
    staging, root = tmp_path / "staging", tmp_path / "exports"
    for name in ("a", "b"):
        (staging / "new" / name).mkdir(parents=True)
        (staging / "new" / name / "list.csv").write_text(f"new {name}\n")
    (root / "a" / "day").mkdir(parents=True)
    (root / "a" / "day" / "list.csv").write_text("old a\n")
    (root / "b").write_text("a file where the folder b/ must go")
    staged = [exports.Staged(str(staging / "new" / n), str(root / n / "day")) for n in ("a", "b")]
    with pytest.raises(Exception, match="exports/b"):
        exports.swap_into_place(spark, staged, str(staging))
    assert (root / "a" / "day" / "list.csv").read_text() == "old a\n"
    assert sorted(p.name for p in (root / "a").iterdir()) == ["day"]
    # A later run stages afresh (the failed run's new folder "a" was discarded).
    (root / "b").unlink()
    (staging / "new" / "a").mkdir()
    (staging / "new" / "a" / "list.csv").write_text("new a\n")
    exports.swap_into_place(spark, staged, str(staging))
    assert (root / "a" / "day" / "list.csv").read_text() == "new a\n"
    assert (root / "b" / "day" / "list.csv").read_text() == "new b\n"


# ------------------------------------------------------------------------------------------
# Transforms on small frames


def test_control_share_is_close_to_the_holdout_and_stable(spark: SparkSession) -> None:
    ids = spark.range(5000).select(F.format_string("C%06d", F.col("id")).alias("customer_id"))
    share = 0.2

    def control(campaign: str, frame: DataFrame) -> DataFrame:
        bucket = holdout_bucket(F.lit(campaign), F.col("customer_id"), "salt-1")
        return frame.where(bucket < share).select("customer_id")

    counts = (
        control("a", ids)
        .withColumn("campaign", F.lit("a"))
        .unionByName(control("b", ids).withColumn("campaign", F.lit("b")))
        .groupBy("campaign")
        .count()
    )
    shares = {r["campaign"]: r["count"] / 5000 for r in counts.collect()}
    assert shares["a"] == pytest.approx(share, abs=0.02)
    assert shares["b"] == pytest.approx(share, abs=0.02)
    # Per campaign: the overlap of two campaigns' controls is about share squared.
    both = control("a", ids).join(control("b", ids), "customer_id").count() / 5000
    assert both == pytest.approx(share * share, abs=0.015)
    # Whoever else is in the audience: a subset gets the same groups.
    subset = ids.where(F.col("customer_id") < "C001000")
    expected = control("a", ids).where(F.col("customer_id") < "C001000")
    assert sorted(control("a", subset).collect()) == sorted(expected.collect())
    # Another salt draws another group.
    other = ids.where(holdout_bucket(F.lit("a"), F.col("customer_id"), "salt-2") < share)
    assert other.join(control("a", ids), "customer_id").count() < 0.5 * shares["a"] * 5000


CANDIDATES = (
    "customer_id string, consent_email boolean, consent_sms boolean, consent_push boolean, "
    "suppressed_channels array<string>, recent_contacts long, expected_value double"
)


def test_policy_consent_suppression_cap_budget_and_size(spark: SparkSession) -> None:
    candidates = spark.createDataFrame(
        [
            ("A1", False, False, False, None, None, 50.0),  # no opt-in at all: never for ads
            ("A2", False, False, True, None, None, 40.0),  # push consent is enough for ads
            ("A3", True, None, None, ["sms"], None, 30.0),  # suppressed for another channel
            ("A4", None, True, False, None, 1, 20.0),  # one contact in the window already
            ("A5", True, True, True, ["*"], None, 45.0),  # suppressed for every channel
            ("A6", True, True, True, None, None, None),  # no score: ranked last
            ("A7", True, True, True, ["ads"], None, 10.0),
        ],
        CANDIDATES,
    )
    rule = {"id": "ads-test", "channel": "ads", "cost_per_contact": 0.1,
            "start_date": "run_date", "end_date": "run_date", "holdout_share": 0.0}  # fmt: skip
    consent = {"ads": ["consent_email", "consent_sms", "consent_push"]}
    contact_policy = policy.ContactPolicy(consent, 2, 7, "salt")
    earlier = spark.createDataFrame([("A4", 1)], "customer_id string, contacts long")

    def decide(earlier: DataFrame | None, **limits: Any) -> dict[str, tuple[str | None, ...]]:
        campaign = parse_campaign({**rule, **limits}, [])
        out = policy.apply_policy(candidates, campaign, contact_policy, earlier).collect()
        return {r["customer_id"]: (r["group"], r["excluded_reason"]) for r in out}

    suppressed = {"A5": (None, policy.SUPPRESSED), "A7": (None, policy.SUPPRESSED)}
    # Budget 0.2 buys two contacts; A4's contact earlier in the run makes two in the window.
    assert decide(earlier, budget=0.2) == {
        "A1": (None, policy.NO_CONSENT),
        "A2": (policy.TREATMENT, None),
        "A3": (policy.TREATMENT, None),
        "A4": (None, policy.FREQUENCY_CAP),
        "A6": (None, policy.OVER_BUDGET),
        **suppressed,
    }
    assert decide(None, max_audience_size=3) == {
        "A1": (None, policy.NO_CONSENT),
        "A2": (policy.TREATMENT, None),
        "A3": (policy.TREATMENT, None),
        "A4": (policy.TREATMENT, None),
        "A6": (None, policy.OVER_MAX_SIZE),
        **suppressed,
    }


def test_a_suppression_file_with_an_unknown_channel_fails(
    spark: SparkSession, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    folder = Path(tables.landing(config, config.publish.suppression_folder))
    folder.mkdir(parents=True)
    (folder / "typo.csv").write_text("customer_id,channel,reason\nK1,,x\nK2,Emial,y\n")
    with pytest.raises(Exception, match=r"suppression file typo\.csv: channel 'emial' is not one"):
        load_suppression(spark, config)
    assert not tables.is_delta(spark, tables.table_path(config, Layer.ACTIVATION, "suppression"))


def test_campaigns_selecting_on_a_model_without_a_snapshot_match_nobody(
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
    world: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No segments and no propensity (a shop whose features were too few to cluster, a catalog
    of views): publish still runs, the rfm-only campaign matches as before, and each criterion
    that needs the missing tables is named in a warning."""
    tmp = tmp_path_factory.mktemp("activation_partial")
    config = make_config(tmp, f"publish.campaigns_file={fx.write_campaigns(tmp)}")
    fx.write_world(spark, config)
    for name in ("segments", "propensity"):
        shutil.rmtree(tables.table_path(config, Layer.GOLD, name))
    with caplog.at_level(logging.WARNING, logger="precision_marketing"):
        run_stage(spark, config, "publish", D)
    found = rows(activation(spark, config, "audiences"))
    matched = {(r["campaign_id"], r["customer_id"]) for r in found}
    before = {
        (r["campaign_id"], r["customer_id"])
        for r in world["first_rows"]
        if r["campaign_id"] == "push-best"
    }
    assert len(before) == 4
    assert matched == before
    manifest = read_manifest(
        spark, rows(activation(spark, config, "campaign_runs"))[0]["manifest_path"]
    )
    assert manifest.inputs["gold/segments"].version is None
    assert manifest.inputs["gold/propensity"].version is None
    warned = sorted(r.getMessage() for r in caplog.records if "matches nobody" in r.getMessage())
    assert warned == [
        f"publish: email-fans: segments (no gold/segments snapshot on or before {D}) "
        "matches nobody",
        f"publish: sms-budget: propensity_deciles (no gold/propensity snapshot on or before {D}) "
        "matches nobody",
    ]

"""Layered config: base < env < --set, and errors that name the bad key."""

from __future__ import annotations

import pytest

from precision_marketing.config import ConfigError, load_config, parse_override


def test_layers_override_in_order() -> None:
    config = load_config("test", ["generate.customers=250", "storage.warehouse=/wh"])
    assert config.spark.master == "local[2]"  # test.yaml over base.yaml
    assert config.generate.days == 60  # test.yaml
    assert config.generate.seed == 42  # base.yaml
    assert config.generate.customers == 250  # --set over both
    assert config.storage.warehouse == "/wh"


def test_spark_conf_keys_keep_their_dots() -> None:
    assert parse_override("spark.conf.spark.sql.shuffle.partitions=16") == {
        "spark": {"conf": {"spark.sql.shuffle.partitions": 16}}
    }
    config = load_config("test", ["spark.conf.spark.sql.shuffle.partitions=16"])
    assert config.spark.conf["spark.sql.shuffle.partitions"] == "16"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("storage.warehuse=/x", r"unknown key 'storage\.warehuse'"),
        ("generate.customers=many", r"'generate\.customers': expected an integer, got 'many'"),
        ("validate.data_docs=maybe", r"'validate\.data_docs': expected true or false"),
        ("pipeline.steps=ingest", r"'pipeline\.steps': expected a list"),
        ("no_equals_sign", r"--set expects key=value"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("test", [override])


def test_unknown_env_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown env 'prod'.*local.*test.*yarn"):
        load_config("prod")


def test_pii_salt_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_PII_SALT", "from-env")
    assert load_config("yarn").pii_salt() == "from-env"
    monkeypatch.delenv("PM_PII_SALT")
    assert load_config("local").pii_salt().startswith("dev-only")
    with pytest.raises(ConfigError, match="PM_PII_SALT is not set"):
        load_config("yarn").pii_salt()

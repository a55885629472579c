"""Layered config: base < env < --set, and errors that name the bad key."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from precision_marketing.config import (
    Config,
    ConfigError,
    find_conf_dir,
    from_dict,
    load_config,
    parse_override,
)


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
    config = load_config(
        "test",
        [
            "spark.conf.spark.sql.shuffle.partitions=16",
            "spark.conf.spark.sql.adaptive.enabled=True",
        ],
    )
    assert config.spark.conf["spark.sql.shuffle.partitions"] == "16"
    assert config.spark.conf["spark.sql.adaptive.enabled"] == "true"


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


def test_base_yaml_is_the_one_place_of_defaults(tmp_path: Path) -> None:
    # The models carry no defaults: a key missing from base.yaml fails and names itself.
    base = yaml.safe_load((find_conf_dir() / "base.yaml").read_text())
    del base["recommend"]["grid"]["alpha"]
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "test.yaml").write_text("{}")
    with pytest.raises(ConfigError, match=r"^missing required key 'recommend\.grid\.alpha'$"):
        load_config("test", conf_dir=tmp_path)
    assert not [
        f"{section.__name__}.{f.name}"
        for section in _sections(Config)
        for f in dataclasses.fields(section)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]


def _sections(cls: type) -> list[type]:
    nested = [t for t in typing.get_type_hints(cls).values() if dataclasses.is_dataclass(t)]
    return [cls, *(s for t in nested for s in _sections(t))]  # type: ignore[arg-type]


def test_a_changed_copy_is_checked_like_a_loaded_one() -> None:
    config = load_config("test")
    assert replace(config.recommend, top_n=5).top_n == 5
    with pytest.raises(ValidationError, match="top_n"):
        replace(config.recommend, top_n=typing.cast(int, "many"))


@dataclasses.dataclass(frozen=True)
class _Pin:
    version: int | None
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Doc:
    pins: dict[str, _Pin]


def test_plain_dataclasses_read_with_the_same_rules() -> None:
    # Manifests, campaigns, suites and source mappings are plain dataclasses read by from_dict.
    doc = from_dict(_Doc, {"pins": {"a": {"version": 3}, "b": {"version": None, "tags": [7]}}})
    assert doc == _Doc({"a": _Pin(3), "b": _Pin(None, ["7"])})
    with pytest.raises(ConfigError, match=r"^unknown key 'pins\.a\.versoin' \(allowed under "):
        from_dict(_Doc, {"pins": {"a": {"versoin": 3}}})
    with pytest.raises(ConfigError, match=r"^'pins\.a\.tags\[1\]': expected a string, got \[\]$"):
        from_dict(_Doc, {"pins": {"a": {"version": 1, "tags": ["x", []]}}})
    with pytest.raises(ConfigError, match=r"^'config': expected a mapping, got 3$"):
        from_dict(_Doc, 3)

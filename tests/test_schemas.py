"""The layer schemas (precision_marketing.schemas) are what the stages' own code produces."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from precision_marketing.contracts import SOURCES
from precision_marketing.ingest.read import bronze_schema
from precision_marketing.schemas import silver
from precision_marketing.silver.job import SILVER_TABLES, SilverTable
from tests.support import context, make_config


def _columns(schema: StructType) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


@pytest.mark.parametrize("table", SILVER_TABLES, ids=lambda t: t.name)
def test_silver_builds_give_the_declared_schema(
    spark: SparkSession, tmp_path: Path, table: SilverTable
) -> None:
    """Each silver table's own build (on no rows) has exactly the declared columns and types:
    the declaration is checked against the code, not only imposed on it by a cast."""
    ctx = context(make_config(tmp_path))
    empty = spark.createDataFrame([], bronze_schema(SOURCES[table.source]))
    built = table.build(ctx, empty, lambda: empty)
    assert _columns(built.schema) == _columns(silver.TABLES[table.name])


def test_every_silver_table_has_a_declared_schema() -> None:
    assert sorted(t.name for t in SILVER_TABLES) == sorted(silver.TABLES)

"""The layer schemas (precision_marketing.schemas) are what the stages' own code produces."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from precision_marketing.config import Config
from precision_marketing.contracts import SOURCES
from precision_marketing.ingest.read import bronze_schema
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.schemas import activation, gold, silver
from precision_marketing.silver.job import SILVER_TABLES, SilverTable
from tests.pipeline_fixture import pipeline_warehouse
from tests.support import context, make_config

# One pipeline run writes every declared table but segment_migrations (it needs a second
# segments snapshot; the segment job conforms it to its declaration all the same).
WRITTEN_ON_A_FIRST_RUN: dict[Layer, list[str]] = {
    Layer.GOLD: sorted(set(gold.TABLES) - {"segment_migrations"}),
    Layer.ACTIVATION: sorted(activation.TABLES),
}


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


@pytest.fixture(scope="module")
def warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return pipeline_warehouse(spark, tmp_path_factory).config


@pytest.mark.parametrize(
    ("layer", "declared"), [(Layer.GOLD, gold.TABLES), (Layer.ACTIVATION, activation.TABLES)]
)
def test_written_tables_have_their_declared_schema(
    spark: SparkSession, warehouse: Config, layer: Layer, declared: dict[str, StructType]
) -> None:
    """What the nine-step pipeline wrote is what schemas/<layer>.py declares, column for column."""
    written = {
        name: _columns(tables.read(spark, path).schema)
        for name in declared
        if tables.is_delta(spark, path := tables.table_path(warehouse, layer, name))
    }
    assert sorted(written) == WRITTEN_ON_A_FIRST_RUN[layer]
    assert written == {name: _columns(declared[name]) for name in written}

"""Picking a reader's columns out of a layer's schema, so a reader never re-declares types."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType


def project(schema: StructType, *names: str) -> StructType:
    """The fields `names` of `schema`, in that order (a missing name is a KeyError)."""
    return StructType([schema[name] for name in names])


def nullable(schema: StructType) -> StructType:
    """`schema` with every field nullable: what a test fixture with gaps needs."""
    return StructType([f.__class__(f.name, f.dataType, True) for f in schema.fields])


def conform(df: DataFrame, schema: StructType) -> DataFrame:
    """`df`'s columns in `schema`'s order and types: what a stage writes, checked against the
    layer's declared schema (a missing column fails here, before anything is written)."""
    return df.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields))

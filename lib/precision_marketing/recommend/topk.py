"""Top-k items per user from ALS factors by blocked matrix products in numpy.

MLlib's `recommendForUserSubset` crosses user and item blocks and keeps a heap per user on the
JVM: 1,623 s for 1 M users x 49 k items at rank 64 on two cores, where the same dense product is
about a minute of BLAS. Here each Arrow batch of user factors is multiplied, a block of rows at a
time, by the item-factor matrix, broadcast once per executor, and `best_k` keeps the k best per
row. The item side is the catalog (bounded); users stream through in batches, never collected.
Output has `recommendForUserSubset`'s shape, so either can feed serving.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    FloatType,
    IntegerType,
    StructField,
    StructType,
)

SCORES_PER_BLOCK = 1 << 23
MIN_BLOCK_ROWS, MAX_BLOCK_ROWS = 16, 2048

RECOMMENDATION = StructType(
    [StructField("item_idx", IntegerType(), False), StructField("rating", FloatType(), False)]
)


def output_schema(user_col: str) -> StructType:
    return StructType(
        [
            StructField(user_col, IntegerType(), False),
            StructField("recommendations", ArrayType(RECOMMENDATION, False), False),
        ]
    )


def item_matrix(items: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(ids, factors float32 items x rank) of an (id, features) factor table, on the driver.

    Bounded by the catalog: 50,000 items at rank 64 are 12.8 MB.
    """
    rows = items.select(F.col("id").cast("int"), "features").orderBy("id").collect()
    ids = np.array([r[0] for r in rows], dtype=np.int32)
    if not rows:
        return ids, np.zeros((0, 0), dtype=np.float32)
    return ids, np.array([r[1] for r in rows], dtype=np.float32)


def ranked(scores: np.ndarray, k: int, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(entries per row, column indices): each row's k highest scores, best first (ties: lower
    index first), the rows' lists concatenated. With `positive` only scores above 0 count, so a
    row may hold fewer than k (a sparse product's zeros are "no score", not a low one).

    Exact, without a selection over every column: each row is cut into at least k chunks, and
    the k-th largest chunk maximum is at most the row's k-th largest score, so only the few
    scores at or above it are sorted: float32 by one integer key per score (row, then the
    score's bits in descending order), others by `lexsort`; both stable, so equal scores keep
    column order. Against a full `argpartition` and `lexsort`: 92,331 columns, k 11, about
    1.7 ms a row -> 0.1 ms.
    """
    rows, columns = scores.shape
    k = min(k, columns)
    if k == 0 or rows == 0:
        return np.zeros(rows, dtype=np.int64), np.zeros(0, dtype=np.int64)
    width = max(1, columns // max(k, math.isqrt(columns)))
    whole = columns // width * width
    chunk_max = scores[:, :whole].reshape(rows, -1, width).max(axis=2)
    if whole < columns:  # the last, shorter chunk
        chunk_max = np.concatenate([chunk_max, scores[:, whole:].max(axis=1, keepdims=True)], 1)
    chunks = chunk_max.shape[1]
    floor = np.partition(chunk_max, chunks - k, axis=1)[:, chunks - k]
    if positive:
        floor = np.maximum(floor, np.nextafter(scores.dtype.type(0), scores.dtype.type(1)))
    flat = np.flatnonzero(scores >= floor[:, None])
    row, column = np.divmod(flat, columns)
    values = np.ascontiguousarray(scores).ravel()[flat]
    if values.dtype == np.float32:
        bits = values.view(np.int32).astype(np.int64)
        ascending = np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)  # ordered like the floats
        order = np.argsort((row << 33) - ascending, kind="stable")
    else:
        order = np.lexsort((-values, row))
    row, column = row[order], column[order]
    counts = np.bincount(row, minlength=rows)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.minimum(counts, k), column[np.arange(len(row)) - starts[row] < k]


def best_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, best first (ties: lower index first)."""
    _, columns = ranked(scores, k)
    return columns.reshape(scores.shape[0], min(k, scores.shape[1]))


def _block(
    ids: pa.Array, features: pa.Array, item_ids: np.ndarray, item_factors_t: np.ndarray, k: int
) -> tuple[pa.Array, pa.Array]:
    n, rank = len(ids), item_factors_t.shape[0]
    flat = np.asarray(features.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    scores = flat.reshape(n, rank) @ item_factors_t
    best = best_k(scores, k)
    ratings = np.take_along_axis(scores, best, axis=1)
    width = best.shape[1]
    recommendations = pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32) * width),
        pa.StructArray.from_arrays(
            [
                pa.array(item_ids[best].ravel(), type=pa.int32()),
                pa.array(ratings.ravel(), type=pa.float32()),
            ],
            fields=[
                pa.field("item_idx", pa.int32(), nullable=False),
                pa.field("rating", pa.float32(), nullable=False),
            ],
        ),
    )
    return ids.cast(pa.int32()), recommendations


def rows_per_block(items: int) -> int:
    """Users scored at a time: their scores stay near SCORES_PER_BLOCK floats (32 MB). With a
    92,331-item catalog that is 90 users a block; 2,048 (750 MB of scores) ran 3x slower."""
    return max(MIN_BLOCK_ROWS, min(MAX_BLOCK_ROWS, SCORES_PER_BLOCK // max(items, 1)))


def recommend_for_users(
    users: DataFrame,
    items: DataFrame,
    k: int,
    user_col: str = "customer_idx",
) -> DataFrame:
    """(user_col, recommendations array<(item_idx, rating)>) for every row of `users`, an
    (id, features) factor table; `items` likewise. Ratings are float32 dot products, as MLlib's.
    """
    spark = users.sparkSession
    ids, matrix = item_matrix(items)
    block_rows = rows_per_block(len(ids))
    shared = spark.sparkContext.broadcast((ids, np.ascontiguousarray(matrix.T)))
    names = [user_col, "recommendations"]

    def score(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        item_ids, item_factors_t = shared.value
        for batch in batches:
            for start in range(0, batch.num_rows, block_rows):
                block = batch.slice(start, block_rows)
                columns = _block(
                    block.column("id"), block.column("features"), item_ids, item_factors_t, k
                )
                yield pa.RecordBatch.from_arrays(list(columns), names=names)

    return users.select(F.col("id").cast("int").alias("id"), "features").mapInArrow(
        score, output_schema(user_col)
    )

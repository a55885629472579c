"""Spark MLlib's implicit ALS against the `implicit` library's, fitted on the same matrix: the
physical yardstick issue 16 asks for beside the recommend stage's fit time.

    .venv/bin/pip install implicit==0.7.3   # pyproject.toml's `bench` extra
    .venv/bin/python bench/als_implicit.py --warehouse /tmp/pmbench/n100000/warehouse \
        --run-date 2026-06-30 [--rank 64 --reg-param 0.3 --alpha 1.0 --max-iter 15]

The matrix is the recommend stage's own: the warehouse's silver events and order lines made
into interactions as of the run date (conf/base.yaml's weights, decay and window) and indexed
by gold/customer_ids and gold/item_ids. Both libraries then fit the same rank for the same
number of iterations with the same confidences: 1 + alpha x value for an observed pair (MLlib
derives it; implicit is given it, its own alpha at 1), 1 with preference 0 for every other
pair. What they cannot share is the regularization: MLlib multiplies it by each row's number
of observed pairs (ALS-WR), implicit adds it as it is. So each model's loss is reported under
both definitions, computed here the same way for both.

implicit runs on this process's two cores with BLAS single-threaded (its own advice), first
with the exact solver MLlib uses (a Cholesky solve per row), then with its default conjugate
gradient (3 steps per row). The factors come to the driver: a bench for one machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy import sparse

from precision_marketing.config import load_config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.recommend import als
from precision_marketing.recommend.interactions import interactions
from precision_marketing.recommend.job import (
    CUSTOMER_IDS,
    ITEM_IDS,
    interaction_params,
    read_inputs,
    to_idx,
)
from precision_marketing.spark import build_session


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--run-date", type=date.fromisoformat, required=True)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--reg-param", type=float, default=0.3)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--num-blocks",
        type=int,
        nargs="+",
        default=[0],
        help="MLlib fits, one per count of user and item blocks (0: MLlib's default, 10)",
    )
    parser.add_argument("--skip-implicit", action="store_true", help="MLlib fits only")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    return parser.parse_args()


def factors(frame: DataFrame, rows: int, rank: int) -> np.ndarray:
    """(id, features) rows of an ALS factor table as a dense rows x rank array (zeros: no row)."""
    table = frame.toArrow()
    out = np.zeros((rows, rank), dtype=np.float32)
    ids = table.column("id").to_numpy()
    out[ids] = np.asarray(table.column("features").to_pylist(), dtype=np.float32)
    return out


def losses(
    matrix: sparse.csr_matrix, users: np.ndarray, items: np.ndarray, reg: float
) -> dict[str, float]:
    """The implicit-ALS objective of factors (users, items) for confidences `matrix`: the
    weighted squared error over every pair, plus MLlib's regularization (reg x observed pairs x
    squared norm, per row) and implicit's (reg x squared norm)."""
    coo = matrix.tocoo()
    # Every pair at confidence 1 and preference 0: sum of (x_u . y_i)^2 = <XtX, YtY>.
    error = float(np.sum((users.T @ users) * (items.T @ items), dtype=np.float64))
    for start in range(0, coo.nnz, 1_000_000):  # observed pairs: their own confidence and 1
        u, i, c = (a[start : start + 1_000_000] for a in (coo.row, coo.col, coo.data))
        s = np.einsum("ij,ij->i", users[u], items[i], dtype=np.float64)
        error += float(np.sum(c * (1.0 - s) ** 2 - s**2))
    user_norms = np.einsum("ij,ij->i", users, users, dtype=np.float64)
    item_norms = np.einsum("ij,ij->i", items, items, dtype=np.float64)
    per_user = np.diff(matrix.indptr)
    per_item = np.bincount(coo.col, minlength=items.shape[0])
    return {
        "loss_mllib": error + reg * float(per_user @ user_norms + per_item @ item_norms),
        "loss_implicit": error + reg * float(user_norms.sum() + item_norms.sum()),
    }


def main() -> None:
    args = parse_args()
    config = load_config("local", [f"storage.warehouse={args.warehouse}"])
    spark = build_session(config, "als-vs-implicit")
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="als_checkpoints_"))
    inputs = read_inputs(spark, config)
    raw = interactions(inputs.events, inputs.order_lines, interaction_params(config), args.run_date)
    customer_ids = tables.read(spark, tables.table_path(config, Layer.GOLD, CUSTOMER_IDS))
    item_ids = tables.read(spark, tables.table_path(config, Layer.GOLD, ITEM_IDS))
    matrix_rows = (
        to_idx(raw, customer_ids, item_ids)
        .select(als.USER, als.ITEM, "confidence")
        .where(F.col(als.USER).isNotNull() & F.col(als.ITEM).isNotNull())
        .persist()
    )
    pairs = matrix_rows.count()
    params = als.AlsParams(args.rank, args.reg_param, args.alpha)
    cfg = config.recommend

    fits = []
    for blocks in args.num_blocks:
        started = time.monotonic()
        model = als.fit(
            matrix_rows, params, args.max_iter, args.seed, cfg.checkpoint_interval, blocks
        )
        fits.append((blocks or 10, time.monotonic() - started, model))

    arrow = matrix_rows.toArrow()
    u = arrow.column(als.USER).to_numpy()
    i = arrow.column(als.ITEM).to_numpy()
    confidence = 1.0 + args.alpha * arrow.column("confidence").to_numpy().astype(np.float32)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    matrix = sparse.csr_matrix((confidence, (u, i)), shape=shape, dtype=np.float32)
    results: dict[str, Any] = {
        "warehouse": args.warehouse,
        "run_date": args.run_date.isoformat(),
        "customers": int(np.unique(u).size),
        "items": int(np.unique(i).size),
        "pairs": pairs,
        "params": {**params.as_dict(), "max_iter": args.max_iter},
    }
    for n, (blocks, seconds, model) in enumerate(fits, 1):
        results[f"mllib_{n}_blocks_{blocks}"] = {
            "seconds": round(seconds, 1),
            **losses(
                matrix,
                factors(model.userFactors, shape[0], args.rank),
                factors(model.itemFactors, shape[1], args.rank),
                args.reg_param,
            ),
        }
    matrix_rows.unpersist()
    spark.stop()  # its JVM's cores back for implicit
    if not args.skip_implicit:
        fit_implicit(args, matrix, results)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def fit_implicit(
    args: argparse.Namespace, matrix: sparse.csr_matrix, results: dict[str, Any]
) -> None:
    """implicit's exact and conjugate-gradient fits, each beside the first MLlib fit."""
    from implicit.cpu.als import AlternatingLeastSquares  # the `bench` extra
    from threadpoolctl import threadpool_limits

    for name, use_cg in (("implicit_exact", False), ("implicit_cg", True)):
        with threadpool_limits(1, "blas"):
            fitted = AlternatingLeastSquares(
                factors=args.rank,
                regularization=args.reg_param,
                alpha=1.0,
                iterations=args.max_iter,
                use_cg=use_cg,
                calculate_training_loss=False,
                num_threads=2,
                random_state=args.seed,
            )
            started = time.monotonic()
            fitted.fit(matrix, show_progress=False)
            seconds = time.monotonic() - started
        results[name] = {
            "seconds": round(seconds, 1),
            **losses(matrix, fitted.user_factors, fitted.item_factors, args.reg_param),
        }
    mllib = results[f"mllib_1_blocks_{args.num_blocks[0] or 10}"]["seconds"]
    for name in ("implicit_exact", "implicit_cg"):
        results[name]["mllib_over_this"] = round(mllib / results[name]["seconds"], 1)


if __name__ == "__main__":
    main()

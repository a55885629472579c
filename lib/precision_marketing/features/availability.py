"""Which configured model features the data can carry: the check segment and propensity run
before fitting.

Real data leaves whole features empty (no events: no visit or email features; no discounts:
`discount_order_share` is 0 for everyone). A feature null for every customer breaks MLlib's
Imputer, and a constant one only adds noise, so each model leaves them out of that fit with one
warning and records what it used and dropped. The check is one aggregation over the training
rows (count, min, max per column), not a job per feature.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing.config import ConfigError

log = logging.getLogger(__name__)

ALL_NULL = "all null"
CONSTANT = "constant"
MIN_NUMERIC = 2  # fewer usable numeric features than this cannot separate anyone


def expand(patterns: Sequence[str], columns: Sequence[str]) -> list[str]:
    """Config feature names with globs ("spend_share_*") expanded against the snapshot's
    columns, in config order then column order, each name once. A plain name is kept as is
    (its absence is the config check's to report)."""
    out: list[str] = []
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            matched = [pattern]
        else:
            matched = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
            if not matched:
                log.warning("feature pattern '%s' matches no user_features column", pattern)
        out += [m for m in matched if m not in out]
    return out


@dataclass(frozen=True)
class FeatureCheck:
    """The outcome for one fit: features kept, and dropped ones with the reason."""

    used: list[str]
    used_categorical: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> ALL_NULL | CONSTANT

    def as_dict(self) -> dict[str, Any]:
        return {
            "used": self.used,
            "used_categorical": self.used_categorical,
            "dropped": self.dropped,
        }

    def dropped_text(self) -> str:
        return ", ".join(f"{f} ({why})" for f, why in self.dropped.items()) or "none"


def check(
    df: DataFrame,
    numeric: Mapping[str, str],
    categorical: Sequence[str] = (),
    *,
    model: str,
    rows_name: str = "the training rows",
    min_numeric: int = MIN_NUMERIC,
) -> FeatureCheck:
    """Judges every feature in one `agg` over `df` (the rows the model is fitted on).

    `numeric` maps a feature (a column of `df`) to the Spark SQL expression of the value the
    model sees before imputation (e.g. a "days since" filled with its cap): the feature is
    ALL_NULL when its column has no value, CONSTANT when that expression takes one value (the
    Imputer fills the rest with it). A categorical is dropped only when ALL_NULL.
    Raises ConfigError (exit 2) when fewer than `min_numeric` numeric features are left.
    """
    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i, (feature, expr) in enumerate(numeric.items()):
        value = F.expr(expr)
        aggs += [
            F.count(F.col(f"`{feature}`")).alias(f"n{i}"),
            F.min(value).alias(f"lo{i}"),
            F.max(value).alias(f"hi{i}"),
        ]
    aggs += [F.count(F.col(f"`{c}`")).alias(f"c{j}") for j, c in enumerate(categorical)]
    # One row of 3 values per feature: bounded by the config.
    row = df.agg(*aggs).first()
    values: dict[str, Any] = row.asDict() if row is not None else {}
    if not values.get("_rows"):
        raise ConfigError(f"{model}: {rows_name} are empty: nothing to fit on")
    used, used_categorical, dropped = [], [], {}
    for i, feature in enumerate(numeric):
        if not values[f"n{i}"]:
            dropped[feature] = ALL_NULL
        elif values[f"lo{i}"] is None or values[f"lo{i}"] == values[f"hi{i}"]:
            dropped[feature] = CONSTANT
        else:
            used.append(feature)
    for j, column in enumerate(categorical):
        if not values[f"c{j}"]:
            dropped[column] = ALL_NULL
        else:
            used_categorical.append(column)
    for feature, why in dropped.items():
        log.warning("%s: feature '%s' left out of this fit: %s in %s", model, feature, why,
                    rows_name)  # fmt: skip
    if len(used) < min_numeric:
        raise ConfigError(
            f"{model}: {len(used)} usable numeric feature(s) ({', '.join(used) or 'none'}); "
            f"need at least {min_numeric}. Left out: "
            f"{', '.join(f'{f} ({why})' for f, why in dropped.items()) or 'none'}. "
            f"The data has no values for them (check the sources that feed them), or set "
            f"{model}.model_features to features the data carries"
        )
    return FeatureCheck(used, used_categorical, dropped)

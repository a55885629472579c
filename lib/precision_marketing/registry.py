"""The model registry: one Delta table of model versions (ops/model_versions), when to refit,
and whether a refit replaces the serving model (champion and challenger).

Fitting every model every day is what makes a daily run expensive (issue 16), and a refit that
happens to be worse should not replace a model that works (issue 15). So each model stage asks
`plan` whether today is a refit day (cadence `retrain_every_days` from the latest fit, a forced
refit by `pipeline.refit`, or a monitor status 'refit'); between refits it scores the run date
with the champion. A refit is a challenger: `decide` compares it with the champion on the same
current validation data, and `record` MERGEs both rows by (model, version), so a rerun adds no
row. The models' files stay under models/<name>/<version>/ (models.path).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from precision_marketing.config import Config
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer

log = logging.getLogger(__name__)

TABLE = "model_versions"
MONITORING = "model_monitoring"  # gold/model_monitoring, written by the monitor stage
MODELS = ("segment", "recommend", "propensity")

SCHEMA = StructType(
    [
        StructField("model", StringType(), False),
        StructField("version", StringType(), False),
        StructField("trained_at", TimestampType(), False),
        StructField("as_of_date", DateType(), False),  # the run date it was fitted for
        StructField("train_start", DateType(), True),  # training window (None: all history)
        StructField("train_end", DateType(), True),
        StructField("validation_date", DateType(), True),
        StructField("metric", StringType(), True),  # the validation metric decisions use
        StructField("metric_value", DoubleType(), True),
        StructField("metrics", MapType(StringType(), DoubleType(), True), False),
        StructField("inputs", MapType(StringType(), LongType(), True), False),  # Delta versions
        StructField("role", StringType(), False),
        StructField("decision", StringType(), False),
        StructField("reason", StringType(), False),
    ]
)


class Role(StrEnum):
    CHAMPION = "champion"  # serves the run dates until a better refit
    CHALLENGER = "challenger"  # fitted, judged worse than the champion: kept, not served
    RETIRED = "retired"  # a former champion


@dataclass(frozen=True)
class Version:
    """One row of ops/model_versions."""

    model: str
    version: str
    as_of_date: date
    metric: str | None
    metric_value: float | None
    train_start: date | None = None
    train_end: date | None = None
    validation_date: date | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    role: Role = Role.CHAMPION
    decision: str = ""
    reason: str = ""
    trained_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))


def path(config: Config) -> str:
    return tables.table_path(config, Layer.OPS, TABLE)


def versions(spark: SparkSession, config: Config, model: str) -> list[Version]:
    """Every recorded version of `model` (one row per fit: bounded by the number of refits)."""
    where = path(config)
    if not tables.is_delta(spark, where):
        return []
    rows = tables.read(spark, where).where(F.col("model") == model).collect()
    return [
        Version(
            model=r["model"],
            version=r["version"],
            as_of_date=r["as_of_date"],
            metric=r["metric"],
            metric_value=r["metric_value"],
            train_start=r["train_start"],
            train_end=r["train_end"],
            validation_date=r["validation_date"],
            metrics=dict(r["metrics"] or {}),
            inputs=dict(r["inputs"] or {}),
            role=Role(r["role"]),
            decision=r["decision"],
            reason=r["reason"],
            trained_at=r["trained_at"],
        )
        for r in rows
    ]


def record(spark: SparkSession, config: Config, rows: list[Version]) -> None:
    """MERGE by (model, version): a rerun of the same fit updates its row, adds none."""
    if not rows:
        return
    df = spark.createDataFrame(
        [
            (
                v.model, v.version, v.trained_at, v.as_of_date, v.train_start, v.train_end,
                v.validation_date, v.metric, v.metric_value, v.metrics, v.inputs, v.role.value,
                v.decision, v.reason,
            )
            for v in rows
        ],
        SCHEMA,
    )  # fmt: skip
    tables.upsert(spark, df, path(config), ["model", "version"])


def monitor_says_refit(spark: SparkSession, config: Config, model: str, version: str) -> bool:
    """True when gold/model_monitoring's latest status for the serving version is 'refit'.

    Read defensively: the monitor stage may not have run (or exist), and its table may lack a
    column; either way the cadence alone decides.
    """
    where = tables.table_path(config, Layer.GOLD, MONITORING)
    try:
        if not tables.is_delta(spark, where):
            return False
        latest = (
            tables.read(spark, where)
            # By version alone: version names are unique across models (km-, als-, prop-).
            .where(F.col("model_version") == version)
            .orderBy(F.col("as_of_date").desc())
            .select("status")
            .first()
        )
    except Exception as exc:  # another shape than expected must not stop a model stage
        log.warning("%s: could not read %s (%s): cadence alone decides", model, where, exc)
        return False
    return latest is not None and latest["status"] == "refit"


@dataclass(frozen=True)
class Plan:
    """What a model stage does today: refit (and why) or serve the champion."""

    model: str
    run_date: date
    refit: bool
    why: str
    champion: Version | None  # the version serving on the run date before today's run
    last_fit: date | None  # the latest fit of any role (the cadence counts from it)
    every_days: int

    def next_due(self) -> date | None:
        if self.every_days <= 0:
            return None
        base = self.run_date if self.refit else self.last_fit
        return None if base is None else base + timedelta(days=self.every_days)


def plan(spark: SparkSession, config: Config, model: str, run_date: date, every_days: int) -> Plan:
    """Refit when forced (pipeline.refit), when no champion exists, when every_days is 0, when
    every_days have passed since the latest fit (a kept challenger counts: a refit that lost
    is not retried every day), or when the monitor marked the champion for refit. Only
    versions fitted for run dates up to this one count, so replaying an old date never serves a
    model fitted on later data."""
    known = [v for v in versions(spark, config, model) if v.as_of_date <= run_date]
    # The version serving on run_date: the latest that ever served (a retired one did), so a
    # replay of an old date serves what served then.
    champions = [v for v in known if v.role is not Role.CHALLENGER]
    champion = max(champions, key=lambda v: (v.as_of_date, v.trained_at)) if champions else None
    last_fit = max((v.as_of_date for v in known), default=None)

    def made(refit: bool, why: str) -> Plan:
        return Plan(model, run_date, refit, why, champion, last_fit, every_days)

    if config.pipeline.refit:
        return made(True, "forced (pipeline.refit=true)")
    if champion is None or last_fit is None:
        return made(True, "no champion yet")
    if every_days <= 0:
        return made(True, "retrain_every_days=0: refit every run")
    if run_date >= last_fit + timedelta(days=every_days):
        return made(True, f"due: last fit {last_fit}, retrain_every_days={every_days}")
    if monitor_says_refit(spark, config, model, champion.version):
        return made(True, f"gold/{MONITORING} marks {champion.version} for refit")
    return made(False, f"not due before {last_fit + timedelta(days=every_days)}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    decision: str
    reason: str


def decide(
    metric: str,
    challenger: float | None,
    champion: float | None,
    tolerance: float,
    higher_is_better: bool = True,
) -> Decision:
    """The challenger replaces the champion unless it is worse by more than `tolerance` on the
    same validation data; a side without a figure cannot be compared (the refit wins).

    >>> decide("ndcg", 0.181, 0.190, 0.005).reason
    'challenger ndcg 0.181 < champion 0.190 - tolerance 0.005: champion kept'
    >>> decide("auc", 0.80, 0.79, 0.0).decision
    'promoted'
    """
    if challenger is None or champion is None:
        return Decision(True, "promoted", f"no comparable {metric}: the refit serves")
    sign = 1.0 if higher_is_better else -1.0
    floor = champion - sign * tolerance
    worse = sign * (challenger - floor) < 0
    op, bound = ("<", "-") if higher_is_better else (">", "+")
    figures = f"challenger {metric} {challenger:.3f}"
    against = f"champion {champion:.3f} {bound} tolerance {tolerance:.3f}"
    if worse:
        return Decision(False, "champion kept", f"{figures} {op} {against}: champion kept")
    return Decision(True, "promoted", f"{figures} not worse than {against}: challenger promoted")


def settle(
    plan_: Plan,
    challenger: Version,
    champion_value: float | None,
    tolerance: float,
    not_compared: str = "",
) -> list[Version]:
    """The registry rows a refit leaves: the challenger (promoted or kept) and, when promoted
    over another version, the champion retired. A refit of the serving version itself (a rerun
    with the same settings) updates its figures and files, not its standing. `not_compared`
    says why there is no champion figure (the refit then serves)."""
    old = plan_.champion
    if old is None:
        return [replace(challenger, role=Role.CHAMPION, decision="first fit", reason=plan_.why)]
    if old.version == challenger.version:
        return [replace(challenger, role=old.role, decision=old.decision, reason=old.reason)]
    chosen = decide(
        challenger.metric or "metric", challenger.metric_value, champion_value, tolerance
    )
    if champion_value is None and not_compared:
        chosen = replace(chosen, reason=f"{not_compared}: the refit serves")
    if not chosen.promote:
        return [
            replace(
                challenger, role=Role.CHALLENGER, decision=chosen.decision, reason=chosen.reason
            )
        ]
    return [
        replace(challenger, role=Role.CHAMPION, decision=chosen.decision, reason=chosen.reason),
        replace(
            old,
            role=Role.RETIRED,
            decision="retired",
            reason=f"replaced by {challenger.version} on {challenger.as_of_date}: {chosen.reason}",
        ),
    ]


def serving(plan_: Plan, settled: list[Version]) -> Version:
    """The version that serves the run date after `settle`: the promoted one, else the champion."""
    promoted = [v for v in settled if v.role is Role.CHAMPION]
    chosen = promoted[0] if promoted else plan_.champion
    if chosen is None:  # settle always promotes when there is no champion
        raise RuntimeError(f"{plan_.model}: no version to serve")
    return chosen


def served_line(model: str, served: Version, plan_: Plan, refitted: bool) -> str:
    """The stage's log line (and the summary's): which version served and whether it is new.

    >>> p = Plan("propensity", date(2026, 11, 30), False, "", None, date(2026, 11, 24), 7)
    >>> v = Version("propensity", "prop-20261124-ab12cd34", date(2026, 11, 24), "auc", 0.8)
    >>> served_line("propensity", v, p, False)
    'propensity: served prop-20261124-ab12cd34 (fitted 2026-11-24, next refit due 2026-12-01)'
    """
    due = plan_.next_due()
    when = f"next refit due {due}" if due else "refit every run"
    fitted = "refitted today" if refitted else f"fitted {served.as_of_date}"
    return f"{model}: served {served.version} ({fitted}, {when})"


# gold table whose model_version column says which version served a run date, per model.
SERVING_TABLES = {"segment": "segments", "recommend": "recommendations", "propensity": "propensity"}


def served_version(spark: SparkSession, config: Config, model: str, run_date: date) -> str | None:
    where = tables.table_path(config, Layer.GOLD, SERVING_TABLES[model])
    if not tables.is_delta(spark, where):
        return None
    row = (
        tables.read(spark, where)
        .where(F.col("as_of_date") == F.lit(run_date))
        .select("model_version")
        .first()
    )
    return None if row is None else str(row[0])


def summary_lines(spark: SparkSession, config: Config, model: str, run_date: date) -> list[str]:
    """The pipeline summary's lines for a model: the version that served the run date (from
    its gold table), when it was fitted, when the next refit is due, and a challenger fitted
    that day and kept aside."""
    version = served_version(spark, config, model, run_date)
    if version is None:
        return []
    known = [v for v in versions(spark, config, model) if v.as_of_date <= run_date]
    served = next((v for v in known if v.version == version), None)
    if served is None:  # fitted before the registry existed
        return [f"served {version}"]
    every_days = int(getattr(config, model).retrain_every_days)
    last_fit = max(v.as_of_date for v in known)
    plan_ = Plan(model, run_date, False, "", served, last_fit, every_days)
    lines = [served_line(model, served, plan_, served.as_of_date == run_date)]
    lines += [
        f"{model}: challenger {v.version} {v.decision}: {v.reason}"
        for v in known
        if v.as_of_date == run_date and v.role is Role.CHALLENGER
    ]
    return [line.removeprefix(f"{model}: ") for line in lines]

"""Layered, typed configuration: conf/base.yaml < conf/<env>.yaml < --set key=value.

Config is data: every job reads the same typed tree, and a typo or a wrong type fails at load
time with the dotted path of the bad key instead of deep inside a Spark job.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

CONF_DIR_ENV = "PM_CONF_DIR"
# YAML files in conf/ that are not environments (an unknown --env lists the others).
NOT_ENVS = frozenset({"base", "campaigns", "sources"})


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema.

    `see` says where to look to fix it (a file or a doc section); the command line prints it
    after the message.
    """

    def __init__(self, message: str, see: str | None = None) -> None:
        super().__init__(message)
        self.see = see


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "precision-marketing"
    log_level: str = "WARN"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageConfig:
    # Required: every path the suite touches derives from these (no defaults on purpose).
    landing: str
    warehouse: str
    # Planted answers of the synthetic generator; the pipeline never reads it.
    ground_truth: str
    # One job at a time per (local) warehouse: a second run waits this long for the lock
    # <warehouse>/ops/.run.lock, then stops with exit 5 (0: stop at once). docs/reruns.md.
    lock_wait_seconds: float = 0.0


@dataclass(frozen=True)
class PiiConfig:
    salt_env: str = "PM_PII_SALT"
    # Only for the local demo: used when salt_env is unset, with a warning.
    dev_salt: str | None = None


@dataclass(frozen=True)
class GenerateConfig:
    customers: int = 10_000
    days: int = 120
    seed: int = 42
    defect_rate: float = 0.01
    crm_exports: int = 3
    transaction_files: int = 4
    event_files: int = 4


@dataclass(frozen=True)
class RowCountChange:
    max_drop: float = 0.9
    max_growth: float = 50.0


@dataclass(frozen=True)
class ValidateConfig:
    expectations_dir: str = "expectations"
    row_count_change: RowCountChange = field(default_factory=RowCountChange)
    data_docs: bool = True
    # GE's result sample size per expectation (values shown in results and Data Docs).
    sample_size: int = 20


@dataclass(frozen=True)
class IngestConfig:
    # How the user's exports map onto the contract (conf/sources.yaml); relative to conf/.
    sources_file: str = "sources.yaml"


@dataclass(frozen=True)
class CurrencyConfig:
    """Amounts in silver and gold are in `reporting`; 1 unit of a `rates` key = rate units of it."""

    reporting: str = "EUR"
    rates: dict[str, float] = field(default_factory=dict)

    def accepted(self) -> list[str]:
        """Currencies an order line may carry: the reporting one and those with a rate."""
        return [self.reporting, *sorted(c for c in self.rates if c != self.reporting)]


@dataclass(frozen=True)
class PipelineConfig:
    steps: list[str] = field(default_factory=lambda: ["ingest", "validate", "silver"])


# The synthetic generator's categories (generate); real catalogs bring their own.
TOP_CATEGORIES = ["electronics", "home", "fashion", "beauty", "sports", "books", "toys", "grocery"]


@dataclass(frozen=True)
class LdaConfig:
    topics: int = 6
    max_iter: int = 20
    seed: int = 42
    terms_per_topic: int = 2  # top terms that name a topic ("electronics+Voltix")
    tags_per_customer: int = 3
    min_topic_weight: float = 0.2  # a topic becomes a tag only above this share
    # Below these, topics say nothing (one catalog item gave six topics all named after it):
    # tags are skipped with a warning. min_vocabulary None = 2 x topics.
    min_vocabulary: int | None = None
    min_documents: int = 10

    def vocabulary_needed(self) -> int:
        return self.min_vocabulary if self.min_vocabulary is not None else 2 * self.topics


@dataclass(frozen=True)
class FeaturesConfig:
    # None: the top_category_count categories of the data, chosen on the first features run
    # and stored (features.categories), so the affinity columns are the same in every snapshot.
    # A list pins them.
    top_categories: list[str] | None = None
    top_category_count: int = 8
    windows_days: list[int] = field(default_factory=lambda: [30, 90, 365])
    lda: LdaConfig = field(default_factory=LdaConfig)


@dataclass(frozen=True)
class SegmentConfig:
    k: int | None = None  # a fixed k; None chooses k in [k_min, k_max] by silhouette
    k_min: int = 2
    k_max: int = 10
    # k is at most customers / this: 40 customers do not make 10 segments worth a campaign.
    min_segment_customers: int = 10
    # A k whose smallest cluster holds less than this share of the customers is not chosen.
    min_segment_share: float = 0.02
    seed: int = 42
    max_iter: int = 40
    # user_features columns the model sees; log_features get log1p (skewed counts, amounts).
    model_features: list[str] = field(default_factory=list)
    log_features: list[str] = field(default_factory=list)
    # "days since" features: nulls (never happened) become this cap, larger values are clipped.
    days_cap: int = 400
    profile_features: list[str] = field(default_factory=list)
    distinguishing_features: int = 3
    selection_sample: int = 50_000  # rows scored per k by silhouette (a seeded sample above it)
    pca_sample: int = 3_000  # points in the report's PCA chart


@dataclass(frozen=True)
class AlsGridConfig:
    """The ALS hyper-parameters tried on the time split (every combination)."""

    rank: list[int] = field(default_factory=lambda: [32, 64])
    reg_param: list[float] = field(default_factory=lambda: [0.1, 0.3])
    alpha: list[float] = field(default_factory=lambda: [1.0, 5.0])


@dataclass(frozen=True)
class HistoryConfig:
    """How much history a run uses: the one default every lookback derives from."""

    # None: all that silver holds before the run date (a replay of old data needs no change);
    # an int: that many days before the run date.
    days: int | None = None


@dataclass(frozen=True)
class RulesConfig:
    """FPGrowth thresholds for bought-together rules over order baskets."""

    lookback_days: int | None = None  # None: history.days
    # An itemset counts when at least this many kept orders hold it: a count, not a share,
    # because any one pair's share of baskets shrinks as the catalog grows (a 0.1% minimum
    # support kept 1 rule at 10,000 customers and none at 100,000).
    min_orders: int = 10
    min_confidence: float = 0.05
    min_lift: float = 1.0


@dataclass(frozen=True)
class CooccurrenceConfig:
    """SAR-style item-to-item scores: a customer's decayed affinities (the ALS confidences)
    times the similarity of items bought or viewed by the same customers."""

    # Each customer's items with the largest affinity: bounds the self-join at
    # customers x max_history^2 pairs and the scoring at customers x max_history x neighbours.
    max_history: int = 50
    neighbours: int = 50  # top-M similar items kept per item (itself included)
    min_customers: int = 2  # a pair of items counts when this many customers share it
    similarity: Literal["jaccard", "lift", "count"] = "jaccard"


@dataclass(frozen=True)
class BlendConfig:
    """A weighted sum of per-customer scaled scores of ALS, co-occurrence, popularity and
    recent popularity; weights from a grid on the simplex, chosen on the tuning split."""

    enabled: bool = True
    grid_step: float = 0.2  # weights in multiples of this, summing to 1 (56 points)
    # Candidates per component after excluded items are dropped (at least the largest eval_k).
    pool: int = 50


@dataclass(frozen=True)
class RecommendConfig:
    # Weight per event type; `purchase` weighs order lines (silver knows refunds), so purchase
    # events from the click stream are not counted twice.
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    )
    half_life_days: float = 30.0
    max_confidence: float = 30.0
    lookback_days: int | None = None  # training interactions; None: history.days
    top_n: int = 10
    similar_items: int = 10
    # Never served, never counted relevant in the evaluation, over all history: items bought
    # (kept order lines), seen (any product event or order line), or nothing.
    exclude: Literal["bought", "seen", "none"] = "bought"
    # ALS is asked for N + the most excluded active items of any customer, up to this cap, so
    # heavy users still get N ALS items after their excluded ones are dropped.
    candidate_buffer: int = 200
    popular_days: int = 30  # "recent" for the segment-popular fallback
    validation_days: int = 14
    # The time split judges the customers with new items in the last validation_days; fewer
    # than this and tuning holds out each customer's newest item instead (leave-last-out).
    min_validation_customers: int = 200
    eval_k: list[int] = field(default_factory=lambda: [5, 10, 20])
    tuning_metric: Literal["ndcgAtK", "precisionAtK", "recallAtK", "meanAveragePrecisionAtK"] = (
        "ndcgAtK"
    )
    grid: AlsGridConfig = field(default_factory=AlsGridConfig)
    max_iter: int = 15
    seed: int = 42
    checkpoint_interval: int = 5
    num_blocks: int = 0  # ALS user/item blocks; 0 keeps Spark's default
    tune: bool = True  # False: fit the first grid point without the time-split evaluation
    example_customers: int = 5
    rules: RulesConfig = field(default_factory=RulesConfig)
    cooccurrence: CooccurrenceConfig = field(default_factory=CooccurrenceConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)


@dataclass(frozen=True)
class PropensityGridConfig:
    """LogisticRegression hyper-parameters tried by TrainValidationSplit (every combination)."""

    reg_param: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1])
    elastic_net_param: list[float] = field(default_factory=lambda: [0.0, 0.5])


@dataclass(frozen=True)
class PropensityConfig:
    horizon_days: int = 30  # H: the label is "bought in [as_of, as_of + H)"
    # Training snapshots, days before the run date; each needs offset >= validation + H so its
    # label window ends before the validation as_of date.
    train_as_of_offsets_days: list[int] = field(default_factory=lambda: [60, 90])
    # The later, held-out snapshot (time-based validation); needs offset >= H so its label
    # window has ended by the run date.
    validation_offset_days: int = 30
    # Missing gold/user_features snapshots for those dates are built by the features stage.
    build_missing_features: bool = True
    # Extra model inputs as Spark SQL over user_features columns, e.g. tenure-normalized rates.
    derived_features: dict[str, str] = field(default_factory=dict)
    # Columns the model sees: numeric (log_features get log1p) and one-hot categoricals.
    model_features: list[str] = field(default_factory=list)
    log_features: list[str] = field(default_factory=list)
    categorical_features: list[str] = field(
        default_factory=lambda: [
            "region", "age_band", "gender", "loyalty_tier", "rfm_segment", "preferred_platform"
        ]
    )  # fmt: skip
    days_cap: int = 400  # "days since" nulls (never happened) become this cap
    grid: PropensityGridConfig = field(default_factory=PropensityGridConfig)
    tuning_metric: Literal["areaUnderROC", "areaUnderPR"] = "areaUnderROC"
    train_ratio: float = 0.75
    max_iter: int = 100
    class_weights: bool = True  # "balanced" weights: each class weighs half of the rows
    calibration: Literal["platt", "isotonic"] = "platt"
    seed: int = 42
    spend_model: bool = True  # predicted spend if they buy (expected value = p x spend)
    spend_reg_param: float = 0.01
    churn_model: bool = True  # P(no order in H days) among the recently active
    churn_active_days: int = 90
    curve_points: int = 100  # score quantiles behind the report's ROC / PR curves


@dataclass(frozen=True)
class FrequencyCapConfig:
    """At most `max_contacts` contacts per customer in any `window_days` days, all campaigns."""

    max_contacts: int = 2
    window_days: int = 7


@dataclass(frozen=True)
class PublishConfig:
    # Campaign definitions; a relative path is taken from conf/ (shipped to the cluster with it).
    campaigns_file: str = "campaigns.yaml"
    frequency_cap: FrequencyCapConfig = field(default_factory=FrequencyCapConfig)
    # A channel may contact a customer when any of its silver/customers consent columns is true.
    # ads: the CRM has no ad consent; uploading a customer to an ad platform is marketing use of
    # their data, so it needs an opt-in on at least one channel.
    channel_consent: dict[str, list[str]] = field(
        default_factory=lambda: {
            "email": ["consent_email"],
            "sms": ["consent_sms"],
            "push": ["consent_push"],
            "ads": ["consent_email", "consent_sms", "consent_push"],
        }
    )
    # CSV files (customer_id, channel, reason) under <landing>/<suppression_folder>/.
    suppression_folder: str = "suppression"
    # Salt of the control-group hash: $holdout_salt_env when set, else holdout_salt. Not a
    # secret, but changing it reshuffles every holdout (manifests record its fingerprint).
    holdout_salt_env: str = "PM_HOLDOUT_SALT"
    holdout_salt: str = "pm-holdout-v1"

    def salt(self) -> str:
        return os.environ.get(self.holdout_salt_env) or self.holdout_salt


@dataclass(frozen=True)
class MeasureConfig:
    # Campaigns whose window ended within this many days before the run date are measured on
    # every run: refunds keep arriving after the window, so the numbers settle over weeks.
    lookback_days: int = 90
    # ROI = (incremental revenue x gross_margin - cost) / cost. 1.0 is ROI on revenue, which
    # flatters a campaign whenever the goods cost something; set the business's margin.
    gross_margin: float = 1.0


@dataclass(frozen=True)
class MonitorConfig:
    """The monitor stage: realized quality of past scorings and drift of model inputs.

    A drift figure at or above its `_warn` threshold logs a warning; at or above `_refit` it
    marks the model for refit (status 'refit' in gold/model_monitoring, which retraining reads).
    """

    # Scorings at most this many days before the run date are (re-)measured on every run.
    lookback_days: int = 90
    # Days after a served recommendation list in which a purchase counts; None: the
    # propensity horizon, so both models are judged on the same window.
    recommend_window_days: int | None = None
    recommend_k: int = 10  # recall@k and NDCG@k of the served lists
    psi_bins: int = 10  # quantile bins of the training snapshot
    psi_epsilon: float = 1e-4  # share given to an empty bin, so ln(a / e) stays finite
    psi_warn: float = 0.1
    psi_refit: float = 0.25
    # Increase of a feature's share of nulls from the training snapshot to the run date's.
    null_share_warn: float = 0.05
    null_share_refit: float = 0.2
    # Realized ROC AUC of propensity below this: warn (0.5 is a coin).
    min_roc_auc: float = 0.6
    # Share of customers changing segment between consecutive snapshots above this: warn.
    migration_warn: float = 0.3


@dataclass(frozen=True)
class ResponseConfig:
    """The simulate_response job: planted campaign response of the synthetic customers."""

    seed: int = 42
    # Probability that a treated customer of the archetype places one extra order in the
    # campaign window (absent archetypes: 0). The measured conversion uplift is lower: a customer
    # who would have bought anyway converts either way (docs/data-contract.md).
    uplift_by_archetype: dict[str, float] = field(
        default_factory=lambda: {
            "loyal_high_spender": 0.02,
            "bargain_hunter": 0.08,
            "new_browser": 0.05,
            "lapsed_big_spender": 0.06,
            "occasional_shopper": 0.04,
            "window_shopper": 0.01,
        }
    )


@dataclass(frozen=True)
class Config:
    env: str
    storage: StorageConfig
    spark: SparkConfig = field(default_factory=SparkConfig)
    pii: PiiConfig = field(default_factory=PiiConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    currency: CurrencyConfig = field(default_factory=CurrencyConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    propensity: PropensityConfig = field(default_factory=PropensityConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    response: ResponseConfig = field(default_factory=ResponseConfig)
    conf_dir: str = ""

    def pii_salt(self) -> str:
        """The salt for pseudonymous keys: from the environment, never from a file in prod."""
        salt = os.environ.get(self.pii.salt_env)
        if salt:
            return salt
        if self.pii.dev_salt:
            return self.pii.dev_salt
        raise ConfigError(
            f"environment variable {self.pii.salt_env} is not set: it holds the PII salt "
            f"(env '{self.env}' has no development salt)",
            see="the PII salt in README.md#configuration",
        )

    def campaigns_path(self) -> Path:
        path = Path(self.publish.campaigns_file)
        return path if path.is_absolute() else Path(self.conf_dir) / path

    def sources_path(self) -> Path:
        path = Path(self.ingest.sources_file)
        return path if path.is_absolute() else Path(self.conf_dir) / path

    def expectations_path(self) -> Path:
        path = Path(self.validate.expectations_dir)
        return path if path.is_absolute() else Path(self.conf_dir) / path


def find_conf_dir() -> Path:
    """conf/ from $PM_CONF_DIR, ./conf (YARN cluster mode ships it there), or the checkout."""
    chosen = os.environ.get(CONF_DIR_ENV)
    if chosen:
        # Set on purpose: never fall back to another conf/ without a word.
        if not (Path(chosen) / "base.yaml").is_file():
            raise ConfigError(
                f"{CONF_DIR_ENV}={chosen}: no base.yaml there",
                see=f"${CONF_DIR_ENV}, or unset it to use ./conf",
            )
        return Path(chosen).resolve()
    candidates: list[str | Path] = ["conf", Path(__file__).parents[2] / "conf"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "base.yaml").is_file():
            return Path(candidate).resolve()
    raise ConfigError(
        f"no conf/base.yaml found; set {CONF_DIR_ENV} to the conf directory",
        see=f"${CONF_DIR_ENV}",
    )


def load_config(
    env: str = "local", overrides: list[str] | None = None, conf_dir: Path | None = None
) -> Config:
    conf_dir = conf_dir or find_conf_dir()
    merged = _read_yaml(conf_dir / "base.yaml")
    env_file = conf_dir / f"{env}.yaml"
    if not env_file.is_file():
        known = sorted(p.stem for p in conf_dir.glob("*.yaml") if p.stem not in NOT_ENVS)
        raise ConfigError(f"unknown env '{env}': no {env_file} (known: {', '.join(known)})")
    merged = deep_merge(merged, _read_yaml(env_file))
    for override in overrides or []:
        merged = deep_merge(merged, parse_override(override))
    merged["env"] = env
    merged["conf_dir"] = str(conf_dir)
    return from_dict(Config, merged)


def parse_override(text: str) -> dict[str, Any]:
    """'a.b.c=value' -> {'a': {'b': {'c': value}}}, the value parsed as YAML (so 3 is an int)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got '{text}'")
    value: Any = yaml.safe_load(raw) if raw.strip() else ""
    # Keep Spark conf keys with dots intact: spark.conf.<spark key>=value.
    parts = key.strip().split(".")
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        parts = [*parts[:2], ".".join(parts[2:])]
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


T = typing.TypeVar("T")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Builds dataclass `cls` from plain data, naming the dotted key of any mismatch."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown key '{where}{unknown[0]}' (allowed under {path or 'the top level'}: "
            f"{', '.join(sorted(fields))})"
        )
    values = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name in data:
            values[name] = _coerce(hints[name], data[name], key_path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{key_path}'")
    return cls(**values)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"'{path}': {value!r} is not one of {list(get_args(tp))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"'{path}': expected a list, got {value!r}")
        (item_type,) = get_args(tp)
        return [_coerce(item_type, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{path}': expected a mapping, got {value!r}")
        _, value_type = get_args(tp)
        return {str(k): _coerce(value_type, v, f"{path}.{k}") for k, v in value.items()}
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"'{path}': expected a string, got {value!r}")
        return str(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}': expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{path}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"'{path}': expected a number, got {value!r}")
        return float(value)
    if tp is Any:
        return value
    raise ConfigError(f"'{path}': unsupported config type {tp}")

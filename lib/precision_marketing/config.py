"""Layered, typed configuration: conf/base.yaml < conf/<env>.yaml < --set key=value.

Config is data: every job reads the same typed tree, and a typo or a wrong type fails at load
time with the dotted path of the bad key instead of deep inside a Spark job. conf/base.yaml is
the one place of defaults: it sets every key, and the models below declare types without
defaults, so a key added here without a value there fails at load ("missing required key").
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

CONF_DIR_ENV = "PM_CONF_DIR"
# YAML files in conf/ that are not environments (an unknown --env lists the others).
NOT_ENVS = frozenset({"base", "campaigns", "sources"})
# Unknown keys fail; numbers are accepted where YAML gives them for a string (a Spark conf
# value 16, a campaign id 2026), and pydantic's lax mode reads "3" as 3 (YAML quoting).
MODEL_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema.

    `see` says where to look to fix it (a file or a doc section); the command line prints it
    after the message.
    """

    def __init__(self, message: str, see: str | None = None) -> None:
        super().__init__(message)
        self.see = see


def _spark_conf_value(value: Any) -> Any:
    """Spark reads settings as text: YAML's true/false (`--set ...=false`) as Spark spells them."""
    return str(value).lower() if isinstance(value, bool) else value


@dataclass(frozen=True, config=MODEL_CONFIG)
class SparkConfig:
    master: str
    app_name: str
    log_level: str
    conf: dict[str, Annotated[str, BeforeValidator(_spark_conf_value)]]


@dataclass(frozen=True, config=MODEL_CONFIG)
class StorageConfig:
    # Required: every path the suite touches derives from these (no defaults on purpose).
    landing: str
    warehouse: str
    # Planted answers of the synthetic generator; the pipeline never reads it.
    ground_truth: str
    # One job at a time per (local) warehouse: a second run waits this long for the lock
    # <warehouse>/ops/.run.lock, then stops with exit 5 (0: stop at once). docs/reruns.md.
    lock_wait_seconds: float


@dataclass(frozen=True, config=MODEL_CONFIG)
class PiiConfig:
    salt_env: str
    # Only for the local demo: used when salt_env is unset, with a warning.
    dev_salt: str | None


@dataclass(frozen=True, config=MODEL_CONFIG)
class GenerateConfig:
    customers: int
    days: int
    seed: int
    defect_rate: float
    crm_exports: int
    transaction_files: int
    event_files: int


@dataclass(frozen=True, config=MODEL_CONFIG)
class RowCountChange:
    max_drop: float
    max_growth: float


@dataclass(frozen=True, config=MODEL_CONFIG)
class ValidateConfig:
    expectations_dir: str
    row_count_change: RowCountChange
    data_docs: bool
    # GE's result sample size per expectation (values shown in results and Data Docs).
    sample_size: int
    max_quarantine_share: float | None  # a rule breaking more of a batch stops the run


@dataclass(frozen=True, config=MODEL_CONFIG)
class IngestConfig:
    # How the user's exports map onto the contract (conf/sources.yaml); relative to conf/.
    sources_file: str


@dataclass(frozen=True, config=MODEL_CONFIG)
class CurrencyConfig:
    """Amounts in silver and gold are in `reporting`; 1 unit of a `rates` key = rate units of it."""

    reporting: str
    rates: dict[str, float]

    def accepted(self) -> list[str]:
        """Currencies an order line may carry: the reporting one and those with a rate."""
        return [self.reporting, *sorted(c for c in self.rates if c != self.reporting)]


@dataclass(frozen=True, config=MODEL_CONFIG)
class PipelineConfig:
    steps: list[str]
    # True: every model stage that runs refits today, whatever its retrain_every_days says
    # (`--set pipeline.refit=true`); the refit is still a challenger of the champion.
    refit: bool


# The synthetic generator's categories (generate); real catalogs bring their own.
TOP_CATEGORIES = ["electronics", "home", "fashion", "beauty", "sports", "books", "toys", "grocery"]


@dataclass(frozen=True, config=MODEL_CONFIG)
class LdaConfig:
    topics: int
    max_iter: int
    seed: int
    terms_per_topic: int  # top terms that name a topic ("electronics+Voltix")
    tags_per_customer: int
    min_topic_weight: float  # a topic becomes a tag only above this share
    # Below these, topics say nothing (one catalog item gave six topics all named after it):
    # tags are skipped with a warning. min_vocabulary None = 2 x topics.
    min_vocabulary: int | None
    min_documents: int
    # LDA fits on this many partitions of the documents (by customer_id, sorted), whatever the
    # cluster: its sampling and random starts follow the partitions (features/interests.py).
    partitions: int

    def vocabulary_needed(self) -> int:
        return self.min_vocabulary if self.min_vocabulary is not None else 2 * self.topics


@dataclass(frozen=True, config=MODEL_CONFIG)
class FeaturesConfig:
    # None: the top_category_count categories of the data, chosen on the first features run
    # and stored (features.categories), so the affinity columns are the same in every snapshot.
    # A list pins them.
    top_categories: list[str] | None
    top_category_count: int
    windows_days: list[int]
    lda: LdaConfig
    # The run's order features are summed from gold/customer_daily, merged with the days that
    # changed since the last run, instead of from every order line (features/daily.py).
    incremental: bool


@dataclass(frozen=True, config=MODEL_CONFIG)
class SegmentConfig:
    k: int | None  # a fixed k; None chooses k in [k_min, k_max] by silhouette
    k_min: int
    k_max: int
    # k is at most customers / this: 40 customers do not make 10 segments worth a campaign.
    min_segment_customers: int
    # A k whose smallest cluster holds less than this share of the customers is not chosen.
    min_segment_share: float
    seed: int
    max_iter: int
    # user_features columns the model sees; log_features get log1p (skewed counts, amounts).
    model_features: list[str]
    log_features: list[str]
    # "days since" features: nulls (never happened) become this cap, larger values are clipped.
    days_cap: int
    profile_features: list[str]
    distinguishing_features: int
    selection_sample: int  # rows scored per k by silhouette (a seeded sample above it)
    pca_sample: int  # points in the report's PCA chart
    # Days between refits (0: every run); between them the champion assigns the run date.
    # Segments always take a refit (README: model registry), so there is no tolerance here.
    retrain_every_days: int


@dataclass(frozen=True, config=MODEL_CONFIG)
class AlsGridConfig:
    """The ALS hyper-parameters tried on the time split (every combination)."""

    rank: list[int]
    reg_param: list[float]
    alpha: list[float]


@dataclass(frozen=True, config=MODEL_CONFIG)
class HistoryConfig:
    """How much history a run uses: the one default every lookback derives from."""

    # None: all that silver holds before the run date (a replay of old data needs no change);
    # an int: that many days before the run date.
    days: int | None


@dataclass(frozen=True, config=MODEL_CONFIG)
class RulesConfig:
    """FPGrowth thresholds for bought-together rules over order baskets."""

    lookback_days: int | None  # None: history.days
    # An itemset counts when at least this many kept orders hold it: a count, not a share,
    # because any one pair's share of baskets shrinks as the catalog grows (a 0.1% minimum
    # support kept 1 rule at 10,000 customers and none at 100,000).
    min_orders: int
    min_confidence: float
    min_lift: float
    max_antecedent_items: int | None  # None: any antecedent FPGrowth finds
    per_antecedent: int | None  # best consequents kept per antecedent; None: all


@dataclass(frozen=True, config=MODEL_CONFIG)
class CooccurrenceConfig:
    """Item-to-item scores: a customer's decayed affinities (the ALS confidences) times the
    similarity of items bought or viewed by the same customers (SAR-style), or their items
    times EASE's learned item weights (`similarity: ease`)."""

    # Each customer's items with the largest affinity: bounds the self-join at
    # customers x max_history^2 pairs and the scoring at customers x max_history x neighbours.
    max_history: int
    neighbours: int  # top-M similar items kept per item (itself included)
    min_customers: int  # a pair of items counts when this many customers share it
    similarity: Literal["jaccard", "lift", "count", "ease"]
    # ease only: the ridge penalty, and the busiest items that get weights (the driver inverts
    # a dense square of that side: 5,000 items take 200 MB and seconds, 20,000 over 3 GB).
    ease_l2: float
    ease_max_items: int


@dataclass(frozen=True, config=MODEL_CONFIG)
class BlendConfig:
    """A weighted sum of per-customer scaled scores of ALS, co-occurrence, popularity, recent
    popularity and the customer's own history; weights from a grid on the simplex, chosen on
    the tuning split."""

    enabled: bool
    grid_step: float  # weights in multiples of this, summing to 1 (126 points at 0.2)
    # Candidates per component after excluded items are dropped (at least the largest eval_k).
    pool: int
    # The grid is judged on at most this many of the split's customers (a fixed hash sample):
    # its cost grows with points x customers; the chosen blend is scored on all of them.
    grid_customers: int


@dataclass(frozen=True, config=MODEL_CONFIG)
class RecommendConfig:
    # Weight per event type; `purchase` weighs order lines (silver knows refunds), so purchase
    # events from the click stream are not counted twice.
    event_weights: dict[str, float]
    half_life_days: float
    max_confidence: float
    lookback_days: int | None  # training interactions; None: history.days
    top_n: int
    similar_items: int
    # Never served, never counted relevant in the evaluation, over all history: items bought
    # (kept order lines), seen (any product event or order line), or nothing.
    exclude: Literal["bought", "seen", "none"]
    # ALS is asked for N + the most excluded active items of any customer, up to this cap, so
    # heavy users still get N ALS items after their excluded ones are dropped.
    candidate_buffer: int
    popular_days: int  # "recent" for the segment-popular fallback
    validation_days: int
    # The time split judges the customers with new items in the last validation_days; fewer
    # than this and tuning holds out each customer's newest item instead (leave-last-out).
    min_validation_customers: int
    eval_k: list[int]
    tuning_metric: Literal["ndcgAtK", "precisionAtK", "recallAtK", "meanAveragePrecisionAtK"]
    grid: AlsGridConfig
    max_iter: int
    seed: int
    checkpoint_interval: int
    num_blocks: int  # ALS user/item blocks; 0 keeps Spark's default
    tune: bool  # False: fit the first grid point without the time-split evaluation
    example_customers: int
    rules: RulesConfig
    cooccurrence: CooccurrenceConfig
    blend: BlendConfig
    # Days between refits (0: every run); between them the champion serves the run date. A
    # refit replaces the champion unless worse by more than champion_tolerance in tuning_metric.
    retrain_every_days: int
    champion_tolerance: float


@dataclass(frozen=True, config=MODEL_CONFIG)
class PropensityGridConfig:
    """LogisticRegression hyper-parameters tried by TrainValidationSplit (every combination)."""

    reg_param: list[float]
    elastic_net_param: list[float]


@dataclass(frozen=True, config=MODEL_CONFIG)
class PropensityGbtConfig:
    """MLlib GBTClassifier, the challenger of the tuned LogisticRegression on the same rows."""

    enabled: bool
    max_iter: int  # trees
    max_depth: int
    step_size: float  # learning rate


@dataclass(frozen=True, config=MODEL_CONFIG)
class PropensityConfig:
    horizon_days: int  # H: the label is "bought in [as_of, as_of + H)"
    # Training snapshots, days before the run date; each needs offset >= validation + H so its
    # label window ends before the validation as_of date.
    train_as_of_offsets_days: list[int]
    # The later, held-out snapshot (time-based validation); needs offset >= H so its label
    # window has ended by the run date.
    validation_offset_days: int
    # Missing gold/user_features snapshots for those dates are built by the features stage.
    build_missing_features: bool
    # Extra model inputs as Spark SQL over user_features columns, e.g. tenure-normalized rates.
    derived_features: dict[str, str]
    # Columns the model sees: numeric (log_features get log1p) and one-hot categoricals.
    model_features: list[str]
    log_features: list[str]
    categorical_features: list[str]
    days_cap: int  # "days since" nulls (never happened) become this cap
    grid: PropensityGridConfig
    tuning_metric: Literal["areaUnderROC", "areaUnderPR"]
    train_ratio: float
    max_iter: int
    class_weights: bool  # "balanced" weights: each class weighs half of the rows
    calibration: Literal["platt", "isotonic"]
    gbt: PropensityGbtConfig
    seed: int
    spend_model: bool  # predicted spend if they buy (expected value = p x spend)
    spend_reg_param: float
    churn_model: bool  # P(no order in H days) among the recently active
    churn_active_days: int
    curve_points: int  # score quantiles behind the report's ROC / PR curves
    # Days between refits (0: every run); between them the champion scores the run date. A
    # refit replaces the champion unless worse by more than champion_tolerance in validation
    # ROC AUC.
    retrain_every_days: int
    champion_tolerance: float


@dataclass(frozen=True, config=MODEL_CONFIG)
class FrequencyCapConfig:
    """At most `max_contacts` contacts per customer in any `window_days` days, all campaigns."""

    max_contacts: int
    window_days: int


@dataclass(frozen=True, config=MODEL_CONFIG)
class PublishConfig:
    # Campaign definitions; a relative path is taken from conf/ (shipped to the cluster with it).
    campaigns_file: str
    frequency_cap: FrequencyCapConfig
    # A channel may contact a customer when any of its silver/customers consent columns is true.
    # ads: the CRM has no ad consent; uploading a customer to an ad platform is marketing use of
    # their data, so it needs an opt-in on at least one channel.
    channel_consent: dict[str, list[str]]
    # CSV files (customer_id, channel, reason) under <landing>/<suppression_folder>/.
    suppression_folder: str
    # Salt of the control-group hash: $holdout_salt_env when set, else holdout_salt. Not a
    # secret, but changing it reshuffles every holdout (manifests record its fingerprint).
    holdout_salt_env: str
    holdout_salt: str

    def salt(self) -> str:
        return os.environ.get(self.holdout_salt_env) or self.holdout_salt


@dataclass(frozen=True, config=MODEL_CONFIG)
class MeasureConfig:
    # Campaigns whose window ended within this many days before the run date are measured on
    # every run: refunds keep arriving after the window, so the numbers settle over weeks.
    lookback_days: int
    # ROI = (incremental revenue x gross_margin - cost) / cost. 1.0 is ROI on revenue, which
    # flatters a campaign whenever the goods cost something; set the business's margin.
    gross_margin: float


@dataclass(frozen=True, config=MODEL_CONFIG)
class MonitorConfig:
    """The monitor stage: realized quality of past scorings and drift of model inputs.

    A drift figure at or above its `_warn` threshold logs a warning; at or above `_refit` it
    marks the model for refit (status 'refit' in gold/model_monitoring, which retraining reads).
    """

    # Scorings at most this many days before the run date are (re-)measured on every run.
    lookback_days: int
    # Days after a served recommendation list in which a purchase counts; None: the
    # propensity horizon, so both models are judged on the same window.
    recommend_window_days: int | None
    recommend_k: int  # recall@k and NDCG@k of the served lists
    psi_bins: int  # quantile bins of the training snapshot
    psi_epsilon: float  # share given to an empty bin, so ln(a / e) stays finite
    psi_warn: float
    psi_refit: float
    # Increase of a feature's share of nulls from the training snapshot to the run date's.
    null_share_warn: float
    null_share_refit: float
    # Realized ROC AUC of propensity below this: warn (0.5 is a coin).
    min_roc_auc: float
    # Share of customers changing segment between consecutive snapshots above this: warn.
    migration_warn: float


@dataclass(frozen=True, config=MODEL_CONFIG)
class ResponseConfig:
    """The simulate_response job: planted campaign response of the synthetic customers."""

    seed: int
    # Probability that a treated customer of the archetype places one extra order in the
    # campaign window (absent archetypes: 0). The measured conversion uplift is lower: a customer
    # who would have bought anyway converts either way (docs/data-contract.md).
    uplift_by_archetype: dict[str, float]


@dataclass(frozen=True, config=MODEL_CONFIG)
class Config:
    env: str
    storage: StorageConfig
    spark: SparkConfig
    pii: PiiConfig
    generate: GenerateConfig
    validate: ValidateConfig
    ingest: IngestConfig
    currency: CurrencyConfig
    pipeline: PipelineConfig
    history: HistoryConfig
    features: FeaturesConfig
    segment: SegmentConfig
    recommend: RecommendConfig
    propensity: PropensityConfig
    publish: PublishConfig
    measure: MeasureConfig
    monitor: MonitorConfig
    response: ResponseConfig
    conf_dir: str

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


class _Document(BaseModel, Generic[T]):
    """Carries MODEL_CONFIG to plain dataclasses (campaigns, suites, manifests) inside it."""

    model_config = MODEL_CONFIG
    value: T


def from_dict(cls: type[T], data: Any) -> T:
    """Builds dataclass `cls` (plain or pydantic) from plain data, naming the dotted key of the
    first mismatch."""
    try:
        # pydantic caches the parametrized class
        document = _Document[cls].model_validate({"value": data})  # type: ignore[valid-type]
    except ValidationError as exc:
        # A misspelt key also leaves its right spelling missing: name the misspelling.
        errors = exc.errors()
        first = next((e for e in errors if e["type"] in _UNKNOWN), errors[0])
        raise ConfigError(_message(cls, data, first)) from None
    return typing.cast(T, document.value)


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
# pydantic error types (their first word) -> what the key expected, in the words of the YAML.
_EXPECTED = {
    "int": "an integer",
    "bool": "true or false",
    "float": "a number",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "dataclass": "a mapping",
    "model": "a mapping",
}


def _message(cls: type[Any], data: Any, error: Any) -> str:
    keys = _keys(data, error["loc"][1:])
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    kind = error["type"]
    if kind in _UNKNOWN:
        parent = path.rpartition(".")[0]
        parent_type = _type_at(cls, keys[:-1])
        allowed = ", ".join(sorted(f.name for f in dataclasses.fields(parent_type)))
        return f"unknown key '{path}' (allowed under {parent or 'the top level'}: {allowed})"
    if kind in ("missing", "missing_argument"):
        return f"missing required key '{path}'"
    got = error["input"]
    if kind == "literal_error":
        return f"'{path}': {got!r} is not one of {list(get_args(_type_at(cls, keys)))}"
    expected = _EXPECTED.get(kind.split("_")[0])
    what = f"expected {expected}" if expected else error["msg"]
    return f"'{path or 'config'}': {what}, got {got!r}"


def _keys(data: Any, loc: tuple[int | str, ...]) -> list[int | str]:
    """The parts of an error location that are keys or indexes of `data` (pydantic adds the
    name of the union member it tried)."""
    keys: list[int | str] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            keys.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            keys.append(part)
            node = node[part]
    return keys


def _type_at(tp: Any, keys: list[int | str]) -> Any:
    """The declared type at `keys` under dataclass `tp`, without its `| None`."""
    for key in [*keys, None]:
        options = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (Union, types.UnionType) and len(options) == 1:
            tp = options[0]
        if key is None:
            return tp
        tp = (
            typing.get_type_hints(tp)[str(key)]
            if dataclasses.is_dataclass(tp)
            else get_args(tp)[-1]
        )
    return tp

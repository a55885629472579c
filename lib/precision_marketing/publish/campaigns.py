"""Campaigns as data: conf/campaigns.yaml parsed into typed, validated campaign definitions.

A bad file fails before any Spark work, with a message naming the campaign and the field, e.g.
"campaigns.yaml: campaign 'spring-email': holdout_share must be in [0, 1), got 1.5".

Dates are ISO dates (2026-06-01) or relative to the run date ("run_date", "run_date+13",
"run_date-2"); a campaign sends on every run date from its start_date to its end_date,
inclusive. Relative dates are resolved when a run publishes, and the resolved campaign is what
the run's manifest and activation/campaign_runs record.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from precision_marketing.config import ConfigError, from_dict
from precision_marketing.features.rfm import NO_PURCHASE, RFM_GRID

Channel = Literal["email", "sms", "push", "ads"]
CHANNELS: tuple[str, ...] = ("email", "sms", "push", "ads")
RFM_SEGMENTS = frozenset({NO_PURCHASE, *(name for row in RFM_GRID.values() for name in row)})
# Ids name folders (exports/<id>/) and appear in SQL predicates: keep them plain.
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
RELATIVE_DATE = re.compile(r"run_date\s*(?:([+-])\s*(\d+))?")
DATE_FIELDS = ("start_date", "end_date")


@dataclass(frozen=True)
class DecileRange:
    """Propensity deciles min..max, inclusive (1 = the most likely buyers)."""

    min: int = 1
    max: int = 10


@dataclass(frozen=True)
class CategoryAffinity:
    """A share of the customer's product views and/or spend in one category, at least."""

    category: str
    min_view_share: float | None = None
    min_spend_share: float | None = None


@dataclass(frozen=True)
class AudienceRule:
    """Every given criterion must hold; a list matches any of its values."""

    segments: list[int | str] | None = None  # gold/segments ids or names
    rfm_segments: list[str] | None = None
    propensity_deciles: DecileRange | None = None
    category_affinity: list[CategoryAffinity] = field(default_factory=list)
    requires_recommendations: bool = False


@dataclass(frozen=True)
class Campaign:
    id: str
    channel: Channel
    cost_per_contact: float
    start_date: str
    end_date: str
    audience: AudienceRule = field(default_factory=AudienceRule)
    holdout_share: float = 0.1
    # Caps on who is contacted (the treatment group); at least one is required.
    max_audience_size: int | None = None
    budget: float | None = None
    description: str = ""

    def window(self, run_date: date) -> tuple[date, date]:
        return resolve_date(self.start_date, run_date), resolve_date(self.end_date, run_date)

    def sends_on(self, run_date: date) -> bool:
        start, end = self.window(run_date)
        return start <= run_date <= end

    def resolved(self, run_date: date) -> Campaign:
        """This campaign with absolute dates, as a run on `run_date` publishes it."""
        start, end = self.window(run_date)
        return dataclasses.replace(self, start_date=start.isoformat(), end_date=end.isoformat())


def resolve_date(spec: str, run_date: date) -> date:
    relative = RELATIVE_DATE.fullmatch(spec.strip())
    if relative:
        sign, days = relative.groups()
        offset = int(days or 0) * (-1 if sign == "-" else 1)
        return run_date + timedelta(days=offset)
    return date.fromisoformat(spec.strip())


def load_campaigns(path: Path, categories: Sequence[str] | None) -> list[Campaign]:
    """The campaigns of a YAML file: `campaigns:` holding a list of campaign mappings.

    `categories`: the ones category_affinity may name (features.top_categories, set by the
    user); None leaves the names to `unknown_categories` (categories chosen from the data).
    """
    source = path.name
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    return parse_campaigns(data, categories, source)


def parse_campaigns(
    data: Any, categories: Sequence[str] | None, source: str = "campaigns.yaml"
) -> list[Campaign]:
    if not isinstance(data, dict) or set(data) != {"campaigns"}:
        raise ConfigError(f"{source}: the top level must be a mapping with one key, 'campaigns'")
    raw_campaigns = data["campaigns"] or []
    if not isinstance(raw_campaigns, list):
        raise ConfigError(f"{source}: 'campaigns' must be a list of campaigns")
    campaigns: list[Campaign] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_campaigns, start=1):
        name = raw.get("id") if isinstance(raw, dict) else None
        where = f"{source}: campaign '{name}'" if name else f"{source}: campaign #{number}"
        try:
            campaign = parse_campaign(raw, categories)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if campaign.id in seen:
            raise ConfigError(f"{where}: id is used by an earlier campaign")
        seen.add(campaign.id)
        campaigns.append(campaign)
    return campaigns


def parse_campaign(raw: Any, categories: Sequence[str] | None) -> Campaign:
    """One campaign mapping -> Campaign; ConfigError names the field (without the campaign)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {raw!r}")
    # YAML reads an unquoted 2026-06-01 as a date; the definition keeps the text form.
    raw = {k: v.isoformat() if k in DATE_FIELDS and isinstance(v, date) else v
           for k, v in raw.items()}  # fmt: skip
    try:
        campaign = from_dict(Campaign, raw)
    except ConfigError as exc:
        # from_dict starts with the quoted key ("'budget': expected a number"): unquote it.
        raise ConfigError(re.sub(r"^'([^']+)':", r"\1:", str(exc))) from exc
    problem = first_problem(campaign, categories)
    if problem:
        raise ConfigError(problem)
    return campaign


def first_problem(c: Campaign, categories: Sequence[str] | None) -> str | None:
    """The first invalid field of `c`, as '<field> <what is wrong>', or None."""
    for problem in _problems(c, categories):
        return problem
    return None


def _problems(c: Campaign, categories: Sequence[str] | None) -> Any:
    if not ID_PATTERN.fullmatch(c.id):
        yield f"id must be 1-64 of a-z, 0-9, '-', '_' (not starting with - or _), got {c.id!r}"
    if not 0.0 <= c.holdout_share < 1.0:
        yield f"holdout_share must be in [0, 1), got {c.holdout_share:g}"
    if c.cost_per_contact < 0:
        yield f"cost_per_contact must be >= 0, got {c.cost_per_contact:g}"
    if c.budget is None and c.max_audience_size is None:
        yield "max_audience_size or budget is required (a campaign's reach must be capped)"
    if c.budget is not None and c.budget <= 0:
        yield f"budget must be > 0, got {c.budget:g}"
    if c.max_audience_size is not None and c.max_audience_size < 1:
        yield f"max_audience_size must be >= 1, got {c.max_audience_size}"
    yield from _date_problems(c)
    yield from _rule_problems(c.audience, categories)


def _date_problems(c: Campaign) -> Any:
    parsed = {}
    for name in DATE_FIELDS:
        spec = getattr(c, name)
        try:
            parsed[name] = resolve_date(spec, date(2000, 1, 1))
        except ValueError:
            yield f"{name} must be an ISO date (2026-06-01) or run_date[+/-days], got {spec!r}"
            return
    relative = [bool(RELATIVE_DATE.fullmatch(getattr(c, n).strip())) for n in DATE_FIELDS]
    # Mixed absolute and relative dates can only be compared on a run date.
    if relative[0] == relative[1] and parsed["end_date"] < parsed["start_date"]:
        yield f"end_date must not be before start_date, got {c.start_date} .. {c.end_date}"


def unknown_categories(c: Campaign, categories: Sequence[str]) -> list[str]:
    """The categories c's audience names that the features do not describe."""
    return [a.category for a in c.audience.category_affinity if a.category not in categories]


def _rule_problems(rule: AudienceRule, categories: Sequence[str] | None) -> Any:
    if rule.segments is not None and not rule.segments:
        yield "audience.segments must list at least one segment id or name"
    if rule.rfm_segments is not None:
        unknown = [s for s in rule.rfm_segments if s not in RFM_SEGMENTS]
        if not rule.rfm_segments or unknown:
            yield (
                f"audience.rfm_segments must list RFM segment names "
                f"({', '.join(sorted(RFM_SEGMENTS))}), got {rule.rfm_segments!r}"
            )
    deciles = rule.propensity_deciles
    if deciles is not None and not 1 <= deciles.min <= deciles.max <= 10:
        yield (
            f"audience.propensity_deciles must satisfy 1 <= min <= max <= 10, "
            f"got min={deciles.min} max={deciles.max}"
        )
    for n, affinity in enumerate(rule.category_affinity):
        where = f"audience.category_affinity[{n}]"
        if categories is not None and affinity.category not in categories:
            yield (
                f"{where}.category must be one of features.top_categories "
                f"({', '.join(categories)}), got {affinity.category!r}"
            )
        shares = {"min_view_share": affinity.min_view_share,
                  "min_spend_share": affinity.min_spend_share}  # fmt: skip
        if all(v is None for v in shares.values()):
            yield f"{where} needs min_view_share and/or min_spend_share"
        for name, value in shares.items():
            if value is not None and not 0.0 <= value <= 1.0:
                yield f"{where}.{name} must be in [0, 1], got {value:g}"

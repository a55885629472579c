"""conf/campaigns.yaml parsing and validation (no Spark)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from precision_marketing.config import TOP_CATEGORIES, ConfigError, load_config
from precision_marketing.publish.campaigns import (
    CategoryAffinity,
    DecileRange,
    load_campaigns,
    parse_campaigns,
)

VALID: dict[str, Any] = {
    "id": "spring-email",
    "channel": "email",
    "start_date": date(2026, 3, 20),  # as YAML reads an unquoted date
    "end_date": "2026-03-27",
    "audience": {
        "segments": [2, "Big spenders"],
        "propensity_deciles": {"min": 1, "max": 3},
        "category_affinity": [{"category": "electronics", "min_view_share": 0.3}],
        "requires_recommendations": True,
    },
    "budget": 150.0,
    "cost_per_contact": 0.01,
    "holdout_share": 0.1,
}


def parse(*campaigns: dict[str, Any]) -> list:
    return parse_campaigns({"campaigns": list(campaigns)}, TOP_CATEGORIES)


def test_a_valid_campaign_is_typed() -> None:
    (campaign,) = parse(VALID)
    assert campaign.start_date == "2026-03-20"
    assert campaign.audience.segments == [2, "Big spenders"]
    assert campaign.audience.propensity_deciles == DecileRange(1, 3)
    assert campaign.audience.category_affinity == [CategoryAffinity("electronics", 0.3, None)]
    assert campaign.max_audience_size is None
    assert campaign.window(date(2030, 1, 1)) == (date(2026, 3, 20), date(2026, 3, 27))


def test_dates_absolute_and_relative_to_the_run_date() -> None:
    (absolute,) = parse(VALID)
    assert [absolute.sends_on(date(2026, 3, d)) for d in (19, 20, 27, 28)] == [
        False,
        True,
        True,
        False,
    ]
    (relative,) = parse({**VALID, "start_date": "run_date-1", "end_date": "run_date + 13"})
    run = date(2026, 6, 30)
    assert relative.sends_on(run)
    resolved = relative.resolved(run)
    assert (resolved.start_date, resolved.end_date) == ("2026-06-29", "2026-07-13")


def test_the_shipped_campaigns_file_is_valid_and_sends_any_day() -> None:
    config = load_config("test")
    campaigns = load_campaigns(config.campaigns_path(), TOP_CATEGORIES)
    assert [c.channel for c in campaigns] == ["email", "sms", "push", "ads"]
    assert all(c.sends_on(date(2031, 2, 3)) for c in campaigns)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"holdout_share": 1.5}, "holdout_share must be in [0, 1), got 1.5"),
        ({"holdout_share": "a lot"}, "holdout_share: expected a number, got 'a lot'"),
        ({"channel": "fax"}, "channel: 'fax' is not one of ['email', 'sms', 'push', 'ads']"),
        ({"cost_per_contact": -1}, "cost_per_contact must be >= 0, got -1"),
        ({"budget": None}, "max_audience_size or budget is required"),
        ({"max_audience_size": 0}, "max_audience_size must be >= 1, got 0"),
        ({"start_date": "next week"}, "start_date must be an ISO date (2026-06-01) or run_date"),
        ({"end_date": "2026-03-01"}, "end_date must not be before start_date"),
        ({"id": "Spring Email"}, "id must be 1-64 of a-z, 0-9"),
        ({"audience": {"segmnts": [1]}}, "unknown key 'audience.segmnts'"),
        ({"audience": {"rfm_segments": ["Champs"]}}, "audience.rfm_segments must list RFM"),
        (
            {"audience": {"propensity_deciles": {"min": 4, "max": 2}}},
            "audience.propensity_deciles must satisfy 1 <= min <= max <= 10, got min=4 max=2",
        ),
        (
            {"audience": {"category_affinity": [{"category": "cars", "min_view_share": 0.2}]}},
            "audience.category_affinity[0].category must be one of features.top_categories",
        ),
        (
            {"audience": {"category_affinity": [{"category": "toys"}]}},
            "audience.category_affinity[0] needs min_view_share and/or min_spend_share",
        ),
        (
            {"audience": {"category_affinity": [{"category": "toys", "min_spend_share": 2}]}},
            "audience.category_affinity[0].min_spend_share must be in [0, 1], got 2",
        ),
    ],
)
def test_invalid_campaigns_name_campaign_and_field(change: dict[str, Any], message: str) -> None:
    campaign = {**VALID, **change}
    with pytest.raises(ConfigError) as raised:
        parse(campaign)
    assert str(raised.value).startswith(f"campaigns.yaml: campaign '{campaign['id']}': {message}")


def test_missing_fields_and_duplicates() -> None:
    no_cost = {k: v for k, v in VALID.items() if k != "cost_per_contact"}
    with pytest.raises(ConfigError) as raised:
        parse(no_cost)
    assert str(raised.value) == (
        "campaigns.yaml: campaign 'spring-email': missing required key 'cost_per_contact'"
    )
    no_id = {k: v for k, v in VALID.items() if k != "id"}
    with pytest.raises(ConfigError) as raised:
        parse(VALID, no_id)
    assert str(raised.value) == "campaigns.yaml: campaign #2: missing required key 'id'"
    with pytest.raises(ConfigError) as raised:
        parse(VALID, VALID)
    assert str(raised.value) == (
        "campaigns.yaml: campaign 'spring-email': id is used by an earlier campaign"
    )


def test_file_level_errors(tmp_path: Path) -> None:
    broken = tmp_path / "campaigns.yaml"
    broken.write_text("campaigns: [\n")
    with pytest.raises(ConfigError, match=r"^campaigns\.yaml: not valid YAML"):
        load_campaigns(broken, TOP_CATEGORIES)
    broken.write_text("- id: a\n")
    with pytest.raises(ConfigError, match="one key, 'campaigns'"):
        load_campaigns(broken, TOP_CATEGORIES)

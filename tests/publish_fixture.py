"""A tiny hand-made warehouse for the publish stage: gold and silver inputs written as Delta.

Run date D = 2026-06-30. Three campaigns, decided in this order:

email-fans (email, 2026-06-30..2026-07-01): segment "Fans" with recommendations, holdout 0.5.
  K01-K04, K06-K08, K14 are eligible (K14 is suppressed for sms only);
  K05 has two contacts in the last 7 days (D-1, D-6): frequency_cap;
  K09 opted out of email, K10 has no recorded consent: no_consent;
  K11 is suppressed for email, K12 for every channel: suppressed;
  K13 is a fan without recommendations: not in the audience at all.
  K06 has two contacts too, but one is 7 days old (D-7): outside the window, eligible.
sms-budget (sms, run_date..run_date): propensity deciles 1-3, no holdout, budget 0.3 at 0.1
  per contact. By expected value: K15 90 (no sms consent), K16 80, K17 70, K18 70, K19 60,
  K20 10. The budget buys exactly three (0.1 + 0.1 + 0.1 = 0.3): K16, K17, K18 (ties by id);
  K19 and K20 are over_budget.
push-best (push, 2026-06-25..2026-06-30): RFM Champions or Loyal, no holdout, max 100.
  K16 (one contact at D-3, one by sms-budget today): frequency_cap; K17, K22: treatment;
  K23 opted out of push: no_consent.

Gold snapshots: user_features at D-7 (everyone "Lost": must not be used), D (used) and D+5
(a future snapshot: must not be used); propensity only at D-1 (the latest on or before D).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import (
    DateType,
    DoubleType,
    StringType,
)

from precision_marketing.config import Config
from precision_marketing.contracts import nullable_schema
from precision_marketing.io import tables
from precision_marketing.io.tables import Layer
from precision_marketing.schemas import activation, gold, silver
from precision_marketing.schemas.project import nullable, project

D = date(2026, 6, 30)


CUSTOMERS = nullable(
    project(
        silver.CUSTOMERS,
        "customer_id",
        "email_hash",
        "phone_hash",
        "signup_date",
        "loyalty_tier",
        "consent_email",
        "consent_sms",
        "consent_push",
        "updated_at",
    )
)
FEATURES = nullable_schema(
    ("customer_id", StringType()),
    ("rfm_segment", StringType()),
    ("view_share_electronics", DoubleType()),
    ("spend_share_electronics", DoubleType()),
    ("as_of_date", DateType()),
)
SEGMENTS = gold.SEGMENTS
PROPENSITY = gold.PROPENSITY
RECOMMENDATIONS = gold.RECOMMENDATIONS
ITEMS = project(silver.ITEMS, "item_id", "title", "category", "price", "active")
CONTACT_HISTORY = nullable(activation.CONTACT_HISTORY)

FANS = [f"K{n:02d}" for n in range(1, 15)]  # K01..K14, segment 1 "Fans"
OTHERS = [f"K{n:02d}" for n in range(15, 24)]  # K15..K23, segment 2 "Browsers"
NO_RECS = "K13"
EMAIL_ELIGIBLE = ["K01", "K02", "K03", "K04", "K06", "K07", "K08", "K14"]

# consent (email, sms, push); every customer not listed consents to all three.
CONSENT: dict[str, tuple[bool | None, bool | None, bool | None]] = {
    "K09": (False, True, True),
    "K10": (None, True, True),
    "K15": (True, False, True),
    "K23": (True, True, False),
}
RFM = {"K16": "Champions", "K17": "Loyal", "K22": "Champions", "K23": "Loyal"}
# customer: (decile, expected_value) at D-1
PROPENSITY_ROWS = {
    "K15": (1, 90.0),
    "K16": (1, 80.0),
    "K17": (2, 70.0),
    "K18": (2, 70.0),
    "K19": (3, 60.0),
    "K20": (3, 10.0),
    "K21": (5, 50.0),
    "K22": (6, 5.0),
    "K23": (7, 4.0),
}
HISTORY = [
    ("K05", D - timedelta(days=1)),
    ("K05", D - timedelta(days=6)),
    ("K06", D - timedelta(days=1)),
    ("K06", D - timedelta(days=7)),
    ("K16", D - timedelta(days=3)),
]
SUPPRESSION_CSV = "customer_id,channel,reason\nK11,email,complaint\nK12,,erasure\nK14,sms,carrier\n"

CAMPAIGNS_YAML = """
campaigns:
  - id: email-fans
    channel: email
    start_date: 2026-06-30
    end_date: 2026-07-01
    audience: {segments: [Fans], requires_recommendations: true}
    max_audience_size: 50
    cost_per_contact: 0.01
    holdout_share: 0.5
  - id: sms-budget
    channel: sms
    start_date: run_date
    end_date: run_date
    audience: {propensity_deciles: {min: 1, max: 3}}
    budget: 0.3
    cost_per_contact: 0.1
    holdout_share: 0.0
  - id: push-best
    channel: push
    start_date: "2026-06-25"
    end_date: "2026-06-30"
    audience: {rfm_segments: [Champions, Loyal]}
    max_audience_size: 100
    cost_per_contact: 0.002
    holdout_share: 0.0
"""


def _save(spark: SparkSession, config: Config, layer: Layer, name: str, rows: list, schema: Any):
    df = spark.createDataFrame(rows, schema)
    df.write.format("delta").mode("overwrite").save(tables.table_path(config, layer, name))


def customers_rows(consent: dict[str, tuple[bool | None, bool | None, bool | None]]) -> list:
    updated = datetime(2026, 6, 1, tzinfo=UTC)
    return [
        (c, f"h-{c}", None, date(2025, 1, 1), "silver", *consent.get(c, (True, True, True)),
         updated)
        for c in [*FANS, *OTHERS]
    ]  # fmt: skip


def propensity_rows(values: dict[str, tuple[int, float]], as_of: date) -> list:
    return [
        (c, as_of, ev / 100.0, decile, 100.0, ev, None, "prop-v1")
        for c, (decile, ev) in values.items()
    ]


def write_campaigns(tmp: Path) -> Path:
    path = tmp / "campaigns.yaml"
    path.write_text(CAMPAIGNS_YAML)
    return path


def write_world(spark: SparkSession, config: Config) -> None:
    everyone = [*FANS, *OTHERS]
    _save(spark, config, Layer.SILVER, "customers", customers_rows(CONSENT), CUSTOMERS)
    items = [(f"I{n}", f"Item {n}", "electronics", 10.0 * n, True) for n in range(1, 6)]
    _save(spark, config, Layer.SILVER, "items", items, ITEMS)
    features = [(c, "Lost", 0.0, 0.0, D - timedelta(days=7)) for c in everyone]
    features += [(c, RFM.get(c, "Hibernating"), 0.5, 0.1, D) for c in everyone]
    features += [(c, "Champions", 0.5, 0.1, D + timedelta(days=5)) for c in everyone]
    _save(spark, config, Layer.GOLD, "user_features", features, FEATURES)
    segments = [(c, 1, "Fans", 0.1, "seg-v1", D) for c in FANS]
    segments += [(c, 2, "Browsers", 0.2, "seg-v1", D) for c in OTHERS]
    _save(spark, config, Layer.GOLD, "segments", segments, SEGMENTS)
    # K01 gets items 1-4 (only three are carried), everyone else but K13 items 2-4.
    recs = [("K01", r, f"I{r}", 1.0 / r, "als", "als-v1", D) for r in range(1, 5)]
    recs += [
        (c, r, f"I{r + 1}", 1.0 / r, "popular", "als-v1", D)
        for c in everyone
        if c not in ("K01", NO_RECS)
        for r in range(1, 4)
    ]
    _save(spark, config, Layer.GOLD, "recommendations", recs, RECOMMENDATIONS)
    _save(
        spark,
        config,
        Layer.GOLD,
        "propensity",
        propensity_rows(PROPENSITY_ROWS, D - timedelta(days=1)),
        PROPENSITY,
    )
    history = [(c, "old-camp", "email", day, "publish_old") for c, day in HISTORY]
    _save(spark, config, Layer.ACTIVATION, "contact_history", history, CONTACT_HISTORY)
    folder = Path(tables.landing(config, config.publish.suppression_folder))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "list.csv").write_text(SUPPRESSION_CSV)

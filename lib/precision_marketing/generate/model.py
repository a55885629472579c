"""The synthetic world as data: archetypes, categories, regions, names and the defect catalogue.

Everything the generator draws from is a constant here, so tuning the world (shares, rates,
category mixes) is an edit of data, not of code. docs/data-contract.md describes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from precision_marketing.config import ConfigError
from precision_marketing.contracts import LOYALTY_TIERS, PLATFORMS, SALES_CHANNELS

EPOCH = date(1970, 1, 1)
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Category:
    name: str
    median_price: float  # EUR; item prices are lognormal around it
    price_sigma: float
    brands: tuple[str, ...]
    products: tuple[str, ...]  # nouns for titles, also the category's search terms


CATEGORIES: tuple[Category, ...] = (
    Category(
        "electronics",
        120.0,
        0.9,
        ("Voltix", "Nordtek", "Sonara", "Pixelon", "Ampero"),
        ("headphones", "laptop", "smartphone", "charger", "smart watch", "speaker", "tablet"),
    ),
    Category(
        "home",
        45.0,
        0.8,
        ("Casalo", "Hearthly", "Lumea", "Oakwise", "Nestor"),
        ("lamp", "cushion", "frying pan", "coffee maker", "bed linen", "vase", "rug"),
    ),
    Category(
        "fashion",
        40.0,
        0.6,
        ("Velura", "Northline", "Modista", "Urbane", "Kora"),
        ("sneakers", "jeans", "t-shirt", "jacket", "dress", "scarf", "handbag"),
    ),
    Category(
        "beauty",
        18.0,
        0.5,
        ("Belle Rive", "Purana", "Glowa", "Verde Skin", "Amira"),
        ("moisturizer", "lipstick", "shampoo", "perfume", "serum", "mascara", "sunscreen"),
    ),
    Category(
        "sports",
        50.0,
        0.8,
        ("Stridex", "Peakform", "Aquila", "Runwise", "Trailcraft"),
        ("running shoes", "yoga mat", "dumbbells", "bike helmet", "backpack", "tent"),
    ),
    Category(
        "books",
        14.0,
        0.4,
        ("Penfold", "Inkwell", "Marigold Press", "Atlas Books", "Quarto"),
        ("novel", "cookbook", "thriller", "biography", "travel guide", "comic"),
    ),
    Category(
        "toys",
        25.0,
        0.6,
        ("Playo", "Brickly", "Tinytown", "Wonderbox", "Kiddo"),
        ("puzzle", "board game", "building blocks", "doll", "rc car", "plush toy"),
    ),
    Category(
        "grocery",
        6.0,
        0.5,
        ("Fresca", "Harvest Lane", "Bonterra", "Dailygood", "Olivar"),
        ("coffee beans", "olive oil", "pasta", "chocolate", "green tea", "granola"),
    ),
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)
TITLE_ADJECTIVES = ("Classic", "Pro", "Essential", "Premium", "Eco", "Compact", "Deluxe", "Smart")


@dataclass(frozen=True)
class Region:
    name: str
    utc_offset_minutes: int  # fixed offset (no daylight saving time in this world)
    weight: float
    cities: tuple[tuple[str, str], ...]  # (city, phone country code)


REGIONS: tuple[Region, ...] = (
    Region("atlantic", 0, 0.15, (("Lisbon", "351"), ("Porto", "351"), ("Dublin", "353"))),
    Region("west", 60, 0.25, (("Paris", "33"), ("Lyon", "33"), ("Brussels", "32"))),
    Region("central", 60, 0.25, (("Berlin", "49"), ("Munich", "49"), ("Vienna", "43"))),
    Region("south", 60, 0.20, (("Madrid", "34"), ("Barcelona", "34"), ("Milan", "39"))),
    Region("east", 120, 0.15, (("Athens", "30"), ("Helsinki", "358"), ("Bucharest", "40"))),
)
STORES_PER_REGION = 3


@dataclass(frozen=True)
class Archetype:
    """A customer type. Rates are per active day; each customer scatters around them."""

    id: int
    name: str
    share: float
    purchase_rate: float  # base λ: orders per active day (times a lognormal individual factor)
    session_rate: float  # browse sessions per active day
    extra_lines: float  # mean order lines beyond the first (geometric)
    extra_units: float  # mean units per line beyond the first (geometric)
    discount_prob: float  # share of orders with a discount
    email_engagement: float  # mean probability of opening a newsletter
    recent_share: float  # share who signed up inside the history window (last 45 days)
    churn_share: float  # share whose activity ended in the first 60% of the history window
    category_weights: tuple[float, ...]  # in CATEGORIES order
    channel_weights: tuple[float, float, float]  # SALES_CHANNELS: web, app, store
    platform_weights: tuple[float, float, float]  # PLATFORMS: web, ios, android
    tier_weights: tuple[float, float, float, float]  # LOYALTY_TIERS: none, silver, gold, platinum
    age_mean: float
    age_sd: float


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype(
        0, "loyal_high_spender", 0.12, 0.080, 0.10, 1.6, 0.5, 0.15, 0.60, 0.02, 0.02,
        (0.25, 0.20, 0.20, 0.10, 0.10, 0.05, 0.05, 0.05),
        (0.45, 0.40, 0.15), (0.35, 0.45, 0.20), (0.05, 0.20, 0.45, 0.30), 44, 11,
    ),
    Archetype(
        1, "bargain_hunter", 0.18, 0.040, 0.12, 0.8, 0.3, 0.70, 0.45, 0.05, 0.03,
        (0.05, 0.15, 0.25, 0.10, 0.05, 0.05, 0.15, 0.20),
        (0.60, 0.30, 0.10), (0.55, 0.15, 0.30), (0.45, 0.40, 0.13, 0.02), 38, 12,
    ),
    Archetype(
        2, "new_browser", 0.15, 0.012, 0.30, 0.3, 0.1, 0.25, 0.30, 1.00, 0.00,
        (0.20, 0.05, 0.25, 0.25, 0.10, 0.05, 0.05, 0.05),
        (0.35, 0.60, 0.05), (0.25, 0.30, 0.45), (0.90, 0.10, 0.00, 0.00), 27, 7,
    ),
    Archetype(
        3, "lapsed_big_spender", 0.10, 0.060, 0.06, 1.4, 0.4, 0.10, 0.15, 0.00, 1.00,
        (0.30, 0.20, 0.05, 0.05, 0.25, 0.05, 0.05, 0.05),
        (0.40, 0.25, 0.35), (0.50, 0.35, 0.15), (0.10, 0.30, 0.40, 0.20), 50, 12,
    ),
    Archetype(
        4, "occasional_shopper", 0.30, 0.015, 0.04, 0.5, 0.2, 0.20, 0.30, 0.08, 0.05,
        (0.10, 0.20, 0.10, 0.10, 0.10, 0.15, 0.10, 0.15),
        (0.40, 0.20, 0.40), (0.60, 0.20, 0.20), (0.60, 0.30, 0.08, 0.02), 47, 15,
    ),
    Archetype(
        5, "window_shopper", 0.15, 0.003, 0.15, 0.2, 0.1, 0.30, 0.20, 0.10, 0.05,
        (0.20, 0.10, 0.25, 0.10, 0.20, 0.05, 0.05, 0.05),
        (0.70, 0.25, 0.05), (0.40, 0.30, 0.30), (0.85, 0.13, 0.02, 0.00), 33, 10,
    ),
)  # fmt: skip

# Individual scatter around the archetype (lognormal sigmas, normal sd).
PURCHASE_RATE_SIGMA = 0.5
SESSION_RATE_SIGMA = 0.5
SESSION_PURCHASE_CORRELATION = 0.6  # correlation of the two log factors
EMAIL_ENGAGEMENT_SD = 0.12
CATEGORY_WEIGHT_SIGMA = 0.7  # per-customer lognormal noise on the archetype's category mix
PREFERRED_CHANNEL_SHARE = 0.6  # orders on the customer's own preferred channel
PREFERRED_PLATFORM_SHARE = 0.75  # browse sessions on the customer's preferred platform
RECENT_SIGNUP_DAYS = 45
ESTABLISHED_SIGNUP_YEARS = 4  # established customers signed up up to this long before history
CHURN_WINDOW_SHARE = 0.6
STILL_ACTIVE_DAYS = 3650  # active_until = run_date + this for customers who have not churned
MAX_ORDERS = 9999

# Orders.
MAX_EXTRA_LINES = 7
MAX_EXTRA_UNITS = 9
DISCOUNT_PCTS = (0.10, 0.15, 0.20, 0.30)
CANCEL_RATE = 0.03
REFUND_RATE = 0.05
REFUND_MAX_DAYS = 30

# Items: a customer picks a bestseller with POPULAR_SHARE, else an item of its own window.
POPULAR_SHARE = 0.3
POPULAR_SKEW = 3.0  # j = floor(N_c * u ** POPULAR_SKEW): low indexes are bestsellers
ITEM_WINDOW_SHARE = 0.1  # window width as a share of the category's items
ITEM_WINDOW_MIN = 3
ITEM_WINDOW_MAX = 50
INACTIVE_ITEM_SHARE = 0.05

# Sessions and events.
SESSION_EXTRA_EVENTS = 3.0  # mean events beyond the first (geometric)
MAX_SESSION_EVENTS = 25
EVENT_GAP_MS = 45_000  # event k starts at (k-1) * gap + jitter < gap after the session start
FOCUS_SHARE = 0.7  # product events in the session's focus category
FIRST_EVENT_SEARCH_SHARE = 0.4
NEXT_EVENT_WEIGHTS = (  # event types after the first event of a browse session
    ("product_view", 0.55),
    ("page_view", 0.15),
    ("search", 0.12),
    ("add_to_cart", 0.13),
    ("remove_from_cart", 0.05),
)
ANONYMOUS_SESSION_SHARE = 0.08  # whole session without login (the device logs in elsewhere)
LATE_LOGIN_SHARE = 0.20  # session starts anonymous and logs in part way
CAMPAIGN_BASE_SHARE = 0.04
CAMPAIGN_ENGAGEMENT_SHARE = 0.25  # + engagement * this = share of sessions from a campaign
NEWSLETTERS_PER_DAY = 2 / 7
PURCHASE_STEP_MS = 40_000  # view, add_to_cart ... purchase spacing in a checkout session
VISITORS_PER_CUSTOMER = 0.2  # never-logged-in devices
VISITOR_MAX_SESSIONS = 3
VISITOR_CAMPAIGN_SHARE = 0.15

# Next-day deliveries (generate --next-day).
LATE_STORE_ORDER_SHARE = 0.3  # store orders of the day before that a till uploads a day late
LATE_APP_SESSION_SHARE = 0.1  # app sessions of the day before, buffered offline, sent a day late
NEXT_DAY_MAX_SESSIONS = 999  # browse sessions of one customer in one day

UTM_SOURCES = (  # (utm_source, utm_medium, needs email consent)
    ("newsletter", "email", True),
    ("google", "cpc", False),
    ("facebook", "social", False),
    ("instagram", "social", False),
    ("partner", "affiliate", False),
)
CAMPAIGN_THEMES = ("spring-sale", "new-arrivals", "weekend-deals", "loyalty-rewards")

# CRM.
CHANGE_SHARE = 0.3  # customers whose state changes in a later export (when there is one)
MOVE_SHARE = 0.15  # of the changes, those that also move region
TIER_UP_SHARE = 0.6
GENDER_WEIGHTS = (0.48, 0.48, 0.04)  # contracts.GENDERS: F, M, X
CONSENT_SMS_SHARE = 0.3
CONSENT_PUSH_SHARE = 0.45
CONSENT_EMAIL_BASE = 0.35  # + engagement * 0.6
MIN_AGE = 18
MAX_AGE = 85
LOYALTY_POINTS_MAX = 5000

FIRST_NAMES_F = (
    "Anna", "Maria", "Sofia", "Laura", "Emma", "Julia", "Clara", "Elena", "Ines", "Lea",
    "Chloe", "Marta", "Eva", "Nora", "Ida", "Alice", "Zoe", "Lucia", "Mia", "Sara",
)  # fmt: skip
FIRST_NAMES_M = (
    "Luca", "Jonas", "Pedro", "Louis", "Marco", "Tomas", "Felix", "Hugo", "Nikos", "Leon",
    "Paul", "Diego", "Noah", "Elias", "Mateo", "Oscar", "Ivan", "Adam", "Theo", "Rui",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Muller", "Martin", "Rossi", "Garcia", "Schmidt", "Dubois", "Ferreira",
    "Papadopoulos", "Virtanen", "Popescu", "Bernard", "Fischer", "Lopez", "Romano", "Weber",
    "Costa", "Moreau", "Novak", "Santos", "Meyer", "Bianchi", "Petit", "Wagner", "Murphy",
    "Kelly", "Janssens", "Hoffmann", "Ricci", "Navarro",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")


@dataclass(frozen=True)
class DefectKind:
    source: str
    kind: str
    expected_rule: str | None
    marker_field: str | None  # where "dfx-<source>-<n>" appears in the raw data (None: nowhere)
    per_row: bool = True  # False: one defect per run (a file-level defect)


DEFECT_KINDS: tuple[DefectKind, ...] = (
    DefectKind("events", "malformed_json", "well_formed_record", "session_id"),
    DefectKind("events", "null_event_id", "event_id_present", "session_id"),
    DefectKind("events", "unknown_event_type", "event_type_known", "session_id"),
    DefectKind("events", "unparseable_timestamp", "event_time_valid", "session_id"),
    DefectKind("events", "future_timestamp", "event_time_not_future", "session_id"),
    DefectKind("events", "unknown_item", "event_item_known", "session_id"),
    DefectKind("events", "negative_price", "event_price_in_range", "session_id"),
    # An exact copy of a clean line: it cannot carry a marker; record_key names the event.
    DefectKind("events", "duplicate_event", "event_id_unique", None),
    # A clean event with an extra key; the marker is the extra key's value.
    DefectKind("events", "extra_field", "no_unexpected_fields", "debug_payload"),
    DefectKind("crm", "null_customer_id", "customer_id_present", "city"),
    DefectKind("crm", "unparseable_birth_date", "birth_date_valid", "city"),
    DefectKind("crm", "unknown_loyalty_tier", "loyalty_tier_known", "city"),
    DefectKind("crm", "extra_column", "no_unexpected_fields", None, per_row=False),
    DefectKind("transactions", "null_order_id", "order_id_present", "store_id"),
    DefectKind("transactions", "negative_quantity", "quantity_in_range", "store_id"),
    DefectKind("transactions", "absurd_quantity", "quantity_in_range", "store_id"),
    DefectKind("transactions", "negative_amount", "unit_price_in_range", "store_id"),
    DefectKind("transactions", "unparseable_timestamp", "order_time_valid", "store_id"),
    DefectKind("transactions", "future_timestamp", "order_time_not_future", "store_id"),
    DefectKind("transactions", "unknown_customer", "order_customer_known", "store_id"),
    DefectKind("transactions", "unknown_item", "order_item_known", "store_id"),
    DefectKind("transactions", "unknown_status", "status_known", "store_id"),
    DefectKind("transactions", "empty_file", None, "file_name", per_row=False),
    DefectKind("catalog", "negative_price", "catalog_price_in_range", "title"),
    DefectKind("catalog", "null_item_id", "item_id_present", "title"),
)
DEFECT_SOURCES = ("events", "crm", "transactions", "catalog")

# Values the defects use.
UNKNOWN_EVENT_TYPE = "video_play"
UNKNOWN_LOYALTY_TIER = "diamond"
UNKNOWN_STATUS = "pending"
ABSURD_QUANTITY = 5000
# Future timestamps are ten years after the run date: in the future for any clock a rule may
# compare with (the run date, or the wall clock when a past date is re-run).
FUTURE_MIN_DAYS = 3650
FUTURE_SPAN_DAYS = 28
EXTRA_EVENT_FIELD = "debug_payload"
EXTRA_CRM_COLUMN = "loyalty_points"

assert len(CATEGORIES) == 8
assert all(len(a.category_weights) == len(CATEGORIES) for a in ARCHETYPES)
assert (len(SALES_CHANNELS), len(PLATFORMS), len(LOYALTY_TIERS)) == (3, 3, 4)
assert abs(sum(a.share for a in ARCHETYPES) - 1) < 1e-9


@dataclass(frozen=True)
class GenParams:
    """What one generation depends on: the same params always give the same data."""

    seed: int
    run_date: date
    customers: int
    days: int
    defect_rate: float
    crm_exports: int = 3
    transaction_files: int = 4
    event_files: int = 4

    def __post_init__(self) -> None:
        checks = {
            "customers": self.customers >= 1,
            "days": 1 <= self.days <= 3650,
            "defect_rate": 0.0 <= self.defect_rate <= 0.5,
            "crm_exports": 1 <= self.crm_exports <= 99,
            "transaction_files": 1 <= self.transaction_files <= 99,
            "event_files": 1 <= self.event_files <= 99,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"generate.{bad[0]}: {getattr(self, bad[0])!r} is out of range")

    @property
    def items(self) -> int:
        return min(max(self.customers // 20, 200), 50_000)

    @property
    def visitors(self) -> int:
        return max(1, int(self.customers * VISITORS_PER_CUSTOMER))

    @property
    def run_day(self) -> int:
        """The run date as days since 1970-01-01; everything generated is before its midnight."""
        return (self.run_date - EPOCH).days

    @property
    def start_day(self) -> int:
        return self.run_day - self.days

    def export_days(self) -> list[int]:
        """Day (inclusive) each CRM export covers; the last one is the day before the run."""
        n = self.crm_exports
        return [self.start_day + round(k * self.days / n) - 1 for k in range(1, n + 1)]

    @property
    def extra_column_export(self) -> int:
        """The CRM export (1-based) whose file carries the extra column."""
        return min(2, self.crm_exports)


def items_in_category(items: int, category: int) -> int:
    """Item i belongs to category i % 8; this is how many items category `category` holds."""
    n = len(CATEGORIES)
    return (items - category + n - 1) // n


def item_window(items: int, category: int) -> int:
    n_c = items_in_category(items, category)
    return max(ITEM_WINDOW_MIN, min(ITEM_WINDOW_MAX, round(n_c * ITEM_WINDOW_SHARE)))

"""The builders of the synthetic sources that job.py composes, from the modules that draw them.

draws: hash-based random Column expressions and text helpers; items: the catalog; customers:
customers and visitors; orders: order lines and transactions; events: the click stream; crm:
CRM exports; defects: marked bad rows on top of the clean data; truth: the planted answers.
"""

from precision_marketing.generate.crm import crm_rows, with_loyalty_points
from precision_marketing.generate.customers import customers, visitors
from precision_marketing.generate.defects import (
    DefectPlan,
    catalog_defects,
    crm_defects,
    defect_plan,
    designated_events,
    designated_lines,
    event_defects,
    transaction_defects,
    with_extra_markers,
)
from precision_marketing.generate.events import events, render_events
from precision_marketing.generate.items import catalog
from precision_marketing.generate.orders import order_lines, transactions
from precision_marketing.generate.truth import (
    DEFECTS_SCHEMA,
    defects_table,
    truth_customers,
    truth_item_preferences,
)

__all__ = [
    "DEFECTS_SCHEMA",
    "DefectPlan",
    "catalog",
    "catalog_defects",
    "crm_defects",
    "crm_rows",
    "customers",
    "defect_plan",
    "defects_table",
    "designated_events",
    "designated_lines",
    "event_defects",
    "events",
    "order_lines",
    "render_events",
    "transaction_defects",
    "transactions",
    "truth_customers",
    "truth_item_preferences",
    "visitors",
    "with_extra_markers",
    "with_loyalty_points",
]

"""Where models live and what their versions are called: one rule for every model.

A version names the as_of date and a digest of the settings it was fitted with, so a rerun for
the same day and settings replaces its own version, while a refit with other settings on the
same day is kept beside it instead of overwriting it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

from precision_marketing.config import Config
from precision_marketing.io import tables

# Settings that say when a model is fitted and which fit serves (registry.py), not what is
# fitted: changing them keeps the version names.
NOT_FITTED = ("retrain_every_days", "champion_tolerance")


def version(prefix: str, as_of: date, settings: Any) -> str:
    """`<prefix>-<yyyymmdd>-<8 hex of the settings>` (NOT_FITTED keys left out)."""
    plain = (
        asdict(settings) if is_dataclass(settings) and not isinstance(settings, type) else settings
    )
    if isinstance(plain, dict):
        plain = {k: v for k, v in plain.items() if k not in NOT_FITTED}
    digest = hashlib.sha1(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()
    return f"{prefix}-{as_of:%Y%m%d}-{digest[:8]}"


def as_of_of(model_version: str) -> date | None:
    """The as_of date a version was fitted for; None for a name not made by `version`."""
    parts = model_version.split("-")
    if len(parts) != 3:
        return None
    try:
        return datetime.strptime(parts[1], "%Y%m%d").date()
    except ValueError:
        return None


def path(config: Config, model: str, *parts: str) -> str:
    """`<warehouse>/models/<model>/<parts...>`."""
    return "/".join([tables.warehouse(config), "models", model, *parts])

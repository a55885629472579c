"""Model versions: same day and settings name the same version; other settings a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from precision_marketing import models


@dataclass(frozen=True)
class Settings:
    k: int
    seed: int = 42


def test_a_rerun_names_the_same_version_and_a_refit_with_other_settings_a_new_one() -> None:
    day = date(2026, 6, 30)
    first = models.version("km", day, Settings(3))
    assert first == models.version("km", day, Settings(3))
    assert first.startswith("km-20260630-")
    assert len(first) == len("km-20260630-") + 8
    refit = models.version("km", day, Settings(4))
    assert refit != first
    assert refit.startswith("km-20260630-")
    assert models.version("km", date(2026, 7, 1), Settings(3)) != first


def test_the_as_of_date_is_read_back_from_a_version() -> None:
    assert models.as_of_of(models.version("lr", date(2026, 1, 5), {"a": 1})) == date(2026, 1, 5)
    # Versions named before this rule (a bare date) and foreign folders are not model versions.
    assert models.as_of_of("2026-06-23") is None
    assert models.as_of_of("km-2026xx01-abcdef12") is None

"""Business days in Brazil: weekends and national holidays (from the `holidays` library) are skipped."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=1)
def _national_holidays() -> holidays.HolidayBase:
    # National holidays only: a municipality's own holidays would need its subdivision and local decrees.
    return holidays.country_holidays("BR")


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _national_holidays()


def add_business_days(start: date, days: int) -> date:
    """The date `days` business days after `start` (start itself does not count, as in SLA counting)."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_business_day(current):
            remaining -= 1
    return current

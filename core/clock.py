"""Time as the domain sees it: UTC instants, and dates in the body's local time zone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from core.models import utcnow


@dataclass(frozen=True)
class Clock:
    zone: ZoneInfo
    now: Callable[[], datetime] = utcnow

    def today(self) -> date:
        return self.now().astimezone(self.zone).date()

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)

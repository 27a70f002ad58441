"""Business hours per team, with Brazilian holidays: is the team open now, and when does it open next.

A schedule is written like "mon-fri 08:00-17:00; sat 08:00-12:00" in the team's local time zone. National
holidays (and those of a state, with `subdivision="SP"`) come from the `holidays` package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RULE = re.compile(r"^\s*(\w{3})(?:-(\w{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class BusinessHours:
    windows: dict[int, tuple[time, time]]  # weekday (0 = Monday) → opening and closing time
    zone: ZoneInfo
    subdivision: str | None = None

    @classmethod
    def parse(cls, text: str, *, zone: str = "America/Sao_Paulo", subdivision: str | None = None) -> BusinessHours:
        windows: dict[int, tuple[time, time]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            match = _RULE.match(part.lower())
            if match is None or match.group(1) not in DAYS or (match.group(2) or match.group(1)) not in DAYS:
                raise ValueError(f"unreadable business hours {part!r}; expected e.g. 'mon-fri 08:00-17:00'")
            first, last = DAYS.index(match.group(1)), DAYS.index(match.group(2) or match.group(1))
            opens = time(int(match.group(3)), int(match.group(4)))
            closes = time(int(match.group(5)), int(match.group(6)))
            if closes <= opens or first > last:
                raise ValueError(f"business hours {part!r} close before they open")
            for day in range(first, last + 1):
                windows[day] = (opens, closes)
        return cls(windows, ZoneInfo(zone), subdivision or None)

    def _holiday(self, local: datetime) -> bool:
        return local.date() in holidays.country_holidays("BR", subdiv=self.subdivision, years=local.year)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        window = self.windows.get(local.weekday())
        return window is not None and not self._holiday(local) and window[0] <= local.time() < window[1]

    def next_opening(self, at: datetime) -> datetime | None:
        """The next moment the team opens after `at` (None when the schedule never opens)."""
        local = at.astimezone(self.zone)
        for days in range(0, 15):
            day = (local + timedelta(days=days)).date()
            window = self.windows.get(day.weekday())
            if window is None or day in holidays.country_holidays("BR", subdiv=self.subdivision, years=day.year):
                continue
            opening = datetime.combine(day, window[0], self.zone)
            if opening > local:
                return opening
        return None

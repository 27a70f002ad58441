"""Team business hours with Brazilian holidays."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from handoff.hours import BusinessHours

SP = ZoneInfo("America/Sao_Paulo")
WEEKDAYS = BusinessHours.parse("mon-fri 08:00-17:00; sat 08:00-12:00")


def test_a_team_is_open_inside_its_hours_and_closed_outside() -> None:
    assert WEEKDAYS.is_open(datetime(2026, 11, 23, 9, 30, tzinfo=SP))  # Monday
    assert not WEEKDAYS.is_open(datetime(2026, 11, 23, 17, 0, tzinfo=SP))
    assert WEEKDAYS.is_open(datetime(2026, 11, 28, 11, 59, tzinfo=SP))  # Saturday
    assert not WEEKDAYS.is_open(datetime(2026, 11, 29, 10, 0, tzinfo=SP))  # Sunday


def test_a_national_holiday_closes_the_team_and_the_next_opening_skips_it() -> None:
    # Friday 20 November 2026 is the Dia Nacional de Zumbi e da Consciência Negra.
    holiday = datetime(2026, 11, 20, 10, 0, tzinfo=SP)

    assert not WEEKDAYS.is_open(holiday)
    assert WEEKDAYS.next_opening(holiday) == datetime(2026, 11, 21, 8, 0, tzinfo=SP)


def test_after_closing_the_next_opening_is_the_next_working_morning() -> None:
    assert WEEKDAYS.next_opening(datetime(2026, 11, 28, 12, 30, tzinfo=SP)) == datetime(2026, 11, 30, 8, 0, tzinfo=SP)


def test_the_hours_are_read_in_the_teams_time_zone() -> None:
    utc_noon = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("UTC"))  # 09:00 in São Paulo

    assert WEEKDAYS.is_open(utc_noon)


@pytest.mark.parametrize("text", ["seg-sex 08:00-17:00", "mon-fri 17:00-08:00", "fri-mon 08:00-17:00", "mon 8h"])
def test_unreadable_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="business hours"):
        BusinessHours.parse(text)

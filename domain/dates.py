"""Dates as citizens type them: DD/MM/AAAA (also with dashes or dots) or ISO AAAA-MM-DD."""

from __future__ import annotations

import re
from datetime import date

from domain.errors import DomainError

_BR = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def parse_date(value: str, field: str = "data") -> date:
    text = (value or "").strip()
    try:
        if match := _ISO.fullmatch(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _BR.fullmatch(text):
            return date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        pass
    raise DomainError("invalid_argument", "tools.error.invalid_date", field=field)

"""Citizen- and staff-facing strings, looked up by key in per-locale JSON catalogues (pt-BR first)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

DEFAULT_LOCALE = "pt-BR"


@lru_cache
def _catalogue(locale: str) -> dict[str, str]:
    try:
        raw = resources.files("core").joinpath(f"locales/{locale}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    data: dict[str, str] = json.loads(raw)
    return data


def t(key: str, locale: str = DEFAULT_LOCALE, **params: Any) -> str:
    """Translate `key`; falls back to pt-BR, then to the key itself so a missing string is visible, not fatal."""
    text = _catalogue(locale).get(key) or _catalogue(DEFAULT_LOCALE).get(key) or key
    return text.format(**params) if params else text

"""Partial views of personal data for confirmation ("is this you?") without revealing it."""

from __future__ import annotations

from datetime import date


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"(**) *****-{digits[-4:]}" if len(digits) >= 4 else "****"


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_birth_date(birth: date | None) -> str | None:
    return f"**/**/{birth.year}" if birth else None

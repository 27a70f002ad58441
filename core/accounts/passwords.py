"""Password hashing (argon2id via argon2-cffi) and the password policy: length, expiry, history."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_LENGTH = 128  # argon2 takes any length; the cap keeps one login from costing more than another


class Passwords:
    """Hashes and verifies; the argon2 parameters are argon2-cffi's defaults (RFC 9106, low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        if stored is None:
            self.burn(password)
            return False
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)

    def burn(self, password: str) -> None:
        """Spend the time of one verification, so an unknown username answers as slowly as a known one."""
        with contextlib.suppress(VerificationError, InvalidHashError):
            self._hasher.verify(self._dummy, password)

    @cached_property
    def _dummy(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    max_age_days: int = 90  # 0: never expires
    history: int = 5  # earlier passwords that cannot come back

    def problems(self, password: str, *, username: str) -> list[str]:
        """The pt-BR catalogue keys of every rule `password` breaks (history is checked apart: it needs hashes)."""
        found = []
        if len(password) < self.min_length:
            found.append("password.too_short")
        if len(password) > MAX_LENGTH:
            found.append("password.too_long")
        if username and username.casefold() in password.casefold():
            found.append("password.contains_username")
        if len(set(password)) < 4:
            found.append("password.too_simple")
        return found

    def reused(self, passwords: Passwords, password: str, earlier_hashes: Iterable[str]) -> bool:
        return any(passwords.verify(stored, password) for stored in earlier_hashes)

    def expired(self, changed_at: datetime | None, now: datetime) -> bool:
        if self.max_age_days <= 0 or changed_at is None:
            return False
        return now >= changed_at + timedelta(days=self.max_age_days)


def temporary_password() -> str:
    """A one-time password an administrator hands over; its holder must change it at the first sign-in."""
    return secrets.token_urlsafe(15)

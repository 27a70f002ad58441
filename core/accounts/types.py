"""Values the account services hand out (never ORM rows), and the one error they raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.accounts.roles import Role


class AccountError(Exception):
    """A refusal with an HTTP status, a stable `code` and a pt-BR catalogue key (default `auth.error.<code>`)."""

    def __init__(
        self,
        code: str,
        status: int = 400,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.key = key or f"auth.error.{code}"
        self.headers = headers or {}
        self.extra = extra or {}
        self.params = params


@dataclass(frozen=True)
class Origin:
    """Where a request came from, for the audit trail and the throttles."""

    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Origin()


@dataclass(frozen=True)
class TeamInfo:
    id: int
    name: str
    parent_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "parent_id": self.parent_id}


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    team_id: int | None
    is_active: bool
    has_password: bool
    password_changed_at: datetime | None
    must_change_password: bool
    totp_enabled: bool
    failed_logins: int
    locked_until: datetime | None
    oidc_subject: str | None
    last_login_at: datetime | None
    created_at: datetime
    team_ids: frozenset[int] = field(default_factory=frozenset)  # the teams this member sees

    @property
    def subject(self) -> str:
        return f"user:{self.id}"

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "role": self.role,
            "team_id": self.team_id,
            "is_active": self.is_active,
            "locked": self.locked(now),
            "totp_enabled": self.totp_enabled,
            "sso_linked": self.oidc_subject is not None,
            "must_change_password": self.must_change_password,
            "password_changed_at": _iso(self.password_changed_at),
            "last_login_at": _iso(self.last_login_at),
            "created_at": _iso(self.created_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

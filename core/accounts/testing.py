"""Test doubles for staff accounts: a clock tests move by hand, cheap password hashing, and rewiring helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from argon2 import PasswordHasher

from core.accounts.passwords import Passwords
from core.accounts.service import Accounts, build_accounts
from core.audit import AuditEvent, AuditSink
from core.ratelimit import InMemoryRateLimiter, RateLimiter

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx2 import Response
    from sqlalchemy import Engine

    from core.accounts.roles import Role
    from core.accounts.types import StaffUser
    from core.lgpd.crypto import FieldCipher
    from core.principals import TokenVerifier
    from core.settings import Settings

PASSWORD = "senha-de-teste-longa"  # passes the default policy


class _WithCipher(Protocol):
    @property
    def cipher(self) -> FieldCipher: ...


class Rewirable(Protocol):
    """The app's services as `rewire` rebuilds their accounts (the application shell's `Services` is one)."""

    settings: Settings
    engine: Engine
    audit: AuditSink
    token_verifier: TokenVerifier | None
    _accounts: Accounts | None

    @property
    def lgpd(self) -> _WithCipher | None: ...


class ManualClock:
    """Now is whatever the test says; `advance` moves it. Callable like `utcnow`."""

    def __init__(self, start: datetime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def timestamp(self) -> float:
        """Seconds, for the rate limiter's clock."""
        return self.now.timestamp()


class RecordingAudit:
    """An audit sink that keeps every event for assertions and passes it on to the real one."""

    def __init__(self, inner: AuditSink | None = None) -> None:
        self.inner = inner
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)
        if self.inner is not None:
            self.inner.record(event)

    def actions(self) -> list[str]:
        return [event.action for event in self.events]

    def of(self, action: str) -> list[AuditEvent]:
        return [event for event in self.events if event.action == action]


def fast_passwords() -> Passwords:
    """argon2id with minimal cost: the same code paths as production, a hundred times faster."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def rewire(
    services: Rewirable,
    *,
    clock: ManualClock,
    settings: Settings | None = None,
    limiter: RateLimiter | None = None,
    passwords: Passwords | None = None,
) -> Accounts:
    """Rebuild `services.accounts` on a manual clock (and optionally other settings), and point the bearer-token
    check at its token store."""
    settings = settings or services.settings
    if settings is not services.settings:
        services.settings = settings
    accounts = build_accounts(
        settings,
        services.engine,
        services.audit,
        clock=clock,
        limiter=limiter or InMemoryRateLimiter(clock=clock.timestamp),
        cipher=services.lgpd.cipher if services.lgpd else None,
        passwords=passwords or fast_passwords(),
    )
    services._accounts = accounts
    services.token_verifier = accounts.tokens
    return accounts


def with_settings(settings: Settings, **changes: object) -> Settings:
    """A copy of `settings` with some fields changed (validated like the environment would be)."""
    return type(settings).model_validate({**settings.model_dump(), **changes})


def create_user(
    accounts: Accounts, username: str, role: Role, *, team: int | str | None = None, password: str = PASSWORD
) -> StaffUser:
    from core.accounts.types import SYSTEM

    user, _ = accounts.directory.create_user(
        username, role, team=team, password=password, actor="system", origin=SYSTEM
    )
    return user


def set_cookie(client: TestClient, name: str, value: str) -> None:
    """Put a cookie in the client's jar under the host the server's own cookies land on (so it replaces them)."""
    host = client.base_url.host
    # http.cookiejar files a dotless host such as "testserver" under "testserver.local".
    client.cookies.set(name, value, domain=host if "." in host else f"{host}.local", path="/")


def enroll_totp(accounts: Accounts, user: StaffUser) -> str:
    """Turn two-factor on for `user` the way the account page does (start, then confirm with the app's code);
    returns the secret, from which `core.accounts.totp.code_at` gives later codes."""
    from core.accounts.totp import code_at
    from core.accounts.types import Origin

    # Its own address, so enrolling many members in one test stays under the per-IP throttle.
    origin = Origin(ip=f"enrolment-{user.id}", user_agent="core.accounts.testing")
    secret, _ = accounts.authn.begin_totp(user.id, origin=origin)
    pending = accounts.sessions.create(user.id, auth_method="password", mfa_verified=False)
    accounts.authn.confirm_totp(user.id, code_at(secret, accounts.clock()), origin=origin, session=pending.info)
    return secret


def sign_in_directly(client: TestClient, accounts: Accounts, user: StaffUser, *, mfa_verified: bool = True) -> str:
    """Put a fresh session cookie for `user` in the client (no password round trip); returns its CSRF token.

    With `mfa_verified`, a member whose role requires two-factor and who has none is enrolled first, so the
    session is a full one, as after a real sign-in with password and code."""
    if mfa_verified and user.role in accounts.authn.config.totp_required_roles:
        current = accounts.directory.get(user.id)
        if current is not None and not current.totp_enabled:
            enroll_totp(accounts, user)
    new = accounts.sessions.create(user.id, auth_method="password", mfa_verified=mfa_verified)
    set_cookie(client, accounts.cookies.session, new.cookie)
    return new.info.csrf_token


def login(client: TestClient, username: str, password: str = PASSWORD, totp_code: str | None = None) -> Response:
    """The sign-in form's round trip: fetch the CSRF token, then post the credentials with it."""
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    body: dict[str, Any] = {"username": username, "password": password}
    if totp_code is not None:
        body["totp_code"] = totp_code
    return client.post("/api/auth/login", json=body, headers={"X-CSRF-Token": token})


__all__ = [
    "PASSWORD",
    "ManualClock",
    "RecordingAudit",
    "create_user",
    "enroll_totp",
    "fast_passwords",
    "login",
    "rewire",
    "set_cookie",
    "sign_in_directly",
    "with_settings",
]

"""Everything about staff accounts, built once from the settings: `Services.accounts`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.accounts.authn import AuthConfig, Authenticator
from core.accounts.cookies import CookiePolicy
from core.accounts.csrf import PreSessionTokens
from core.accounts.directory import Directory
from core.accounts.ipfilter import ClientAddress, IPPolicy
from core.accounts.oidc import OIDCClients
from core.accounts.passwords import PasswordPolicy, Passwords
from core.accounts.permissions import scopes_of
from core.accounts.roles import parse_roles
from core.accounts.sessions import SessionInfo, SessionStore
from core.accounts.tokens import TokenStore
from core.accounts.totp import Cipher
from core.accounts.types import StaffUser
from core.audit import AuditSink
from core.audit_http import AnonymousAuditSampler
from core.db import make_session_factory
from core.models import utcnow
from core.principals import Principal
from core.ratelimit import InMemoryRateLimiter, RateLimiter
from core.settings import Settings


@dataclass(frozen=True)
class StaffSession:
    """A signed-in member as one request sees them."""

    user: StaffUser
    session: SessionInfo
    restrictions: frozenset[str]


@dataclass
class Accounts:
    directory: Directory
    authn: Authenticator
    sessions: SessionStore
    tokens: TokenStore
    ip_policy: IPPolicy
    cookies: CookiePolicy
    csrf: PreSessionTokens
    oidc: OIDCClients
    clock: Callable[[], datetime]
    proxies: ClientAddress = field(default_factory=ClientAddress)  # whose X-Forwarded-For is believed
    # one audit row per anonymous client, route and window (core.audit_http)
    anonymous_audit: AnonymousAuditSampler = field(
        default_factory=lambda: AnonymousAuditSampler(InMemoryRateLimiter(), window_s=300)
    )

    def session(self, cookie: str | None) -> StaffSession | None:
        """The live session behind a cookie value, with its user; None if expired, unknown or disabled."""
        if not cookie:
            return None
        info = self.sessions.get(cookie)
        if info is None:
            return None
        user = self.directory.get(info.user_id)
        if user is None or not user.is_active:
            self.sessions.delete(cookie)
            return None
        return StaffSession(user, info, self.authn.restrictions(user, info))

    @staticmethod
    def principal(user: StaffUser) -> Principal:
        return Principal(
            kind="staff", subject=user.subject, scopes=scopes_of(user.role), role=user.role, team_ids=user.team_ids
        )


def build_accounts(
    settings: Settings,
    engine: Engine,
    audit: AuditSink,
    *,
    clock: Callable[[], datetime] = utcnow,
    limiter: RateLimiter | None = None,
    cipher: Cipher | None = None,
    passwords: Passwords | None = None,
) -> Accounts:
    """Light: no query runs and no provider is contacted until the first request needs it."""
    from core.lgpd.crypto import cipher_from_settings, derive_key

    sessions_factory = make_session_factory(engine)
    secret = settings.secret_key.get_secret_value()
    passwords = passwords or Passwords()
    policy = PasswordPolicy(
        min_length=settings.password_min_length,
        max_age_days=settings.password_max_age_days,
        history=settings.password_history,
    )
    session_store = SessionStore(
        sessions_factory,
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
        clock=clock,
    )
    limiter = limiter or build_limiter(settings)
    authn = Authenticator(
        sessions_factory,
        passwords=passwords,
        policy=policy,
        session_store=session_store,
        limiter=limiter,
        cipher=cipher or cipher_from_settings(settings),
        audit=audit,
        clock=clock,
        config=AuthConfig(
            max_failures=settings.login_max_failures,
            lockout=timedelta(minutes=settings.login_lockout_minutes),
            ip_max_attempts=settings.login_ip_max_attempts,
            ip_window=timedelta(seconds=settings.login_ip_window_seconds),
            totp_required_roles=parse_roles(settings.totp_required_roles),
            issuer=settings.organization_name,
        ),
    )
    directory = Directory(
        sessions_factory, passwords=passwords, policy=policy, session_store=session_store, audit=audit, clock=clock
    )
    return Accounts(
        directory=directory,
        authn=authn,
        sessions=session_store,
        tokens=TokenStore(
            sessions_factory, audit=audit, clock=clock, max_lifetime=timedelta(days=settings.token_max_days)
        ),
        ip_policy=IPPolicy.from_strings(settings.staff_ip_allowlist, settings.staff_ip_blocklist),
        proxies=ClientAddress.from_string(settings.trusted_proxies),
        anonymous_audit=AnonymousAuditSampler(limiter, window_s=settings.audit_anonymous_window_seconds),
        cookies=CookiePolicy(
            secure=settings.session_cookie_secure,
            samesite=settings.session_cookie_samesite,
            session_max_age_s=settings.session_absolute_hours * 3600,
        ),
        csrf=PreSessionTokens(derive_key(secret, "accounts/csrf")),
        oidc=OIDCClients(settings.oidc_providers, state_key=derive_key(secret, "accounts/oidc-state")),
        clock=clock,
    )


def build_limiter(settings: Settings) -> RateLimiter:
    """Redis when configured, so every app process counts the same attempts; else this process only."""
    if settings.redis_url:
        from redis import Redis

        from core.ratelimit import RedisRateLimiter

        return RedisRateLimiter(Redis.from_url(settings.redis_url), prefix=f"{settings.handoff_redis_prefix}auth:")
    return InMemoryRateLimiter()

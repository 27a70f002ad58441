"""Bearer tokens for the API and MCP, stored as SHA-256 digests: a `TokenVerifier` backed by the database.

A token reads `atd_<43 url-safe characters>` (256 random bits) and is shown once, when it is issued. It is held
by an integration ("integration:<name>") or by a staff member ("user:<id>"): then it also stops working when
the account is disabled, and it can never do more than the member's role allows.

Every token expires (at most `max_lifetime` after it is issued, which is also the default). A token carrying
data scopes (`permissions.DATA_SCOPES`) that a non-administrator issued is pending: it does not authenticate
until an administrator approves it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.models import ApiToken, User
from core.accounts.permissions import SCOPES, needs_approval, scopes_of
from core.accounts.roles import parse_role
from core.accounts.sessions import digest
from core.accounts.teams import visible_team_ids
from core.accounts.types import SYSTEM, AccountError, Origin
from core.audit import AuditEvent, AuditSink
from core.principals import Principal

TOKEN_PREFIX = "atd_"
_TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    owner: str  # "integration:<name>" or "user:<id>"
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    approved_by: str | None = None
    approved_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.approved_at is None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "owner": self.owner,
            "scopes": list(self.scopes),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "status": "pending" if self.pending else "approved",
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat() if self.approved_at else None,
        }


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    info: TokenInfo


class TokenStore:
    """Issues, lists, revokes and verifies tokens. `verify` is the `core.principals.TokenVerifier`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        audit: AuditSink,
        clock: Callable[[], datetime],
        max_lifetime: timedelta = timedelta(days=90),
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self.max_lifetime = max_lifetime

    def issue(
        self,
        *,
        name: str,
        scopes: Iterable[str],
        created_by: str,
        integration: str | None = None,
        user_id: int | None = None,
        expires_in: timedelta | None = None,
        issuer_is_admin: bool = True,
        origin: Origin = SYSTEM,
    ) -> IssuedToken:
        """`issuer_is_admin`: an administrator (or the server's shell) issues it; otherwise a token with data
        scopes waits for an administrator's approval. `expires_in` defaults to, and may not exceed, the maximum."""
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in SCOPES]
        if unknown:
            raise AccountError("unknown_scope", 422, scopes=", ".join(unknown))
        if not wanted:
            raise AccountError("no_scope", 422)
        if (integration is None) == (user_id is None):
            raise AccountError("token_owner", 422)
        if integration is not None and not _valid_name(integration):
            raise AccountError("integration_name", 422)
        if expires_in is not None and expires_in <= timedelta(0):
            raise AccountError("token_expiry", 422)
        if expires_in is not None and expires_in > self.max_lifetime:
            raise AccountError("token_expiry_too_long", 422, days=self.max_lifetime.days)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        approved = issuer_is_admin or not needs_approval(wanted)
        row = ApiToken(
            token_hash=digest(token),
            prefix=token[:12],
            name=name.strip()[:120] or (integration or "token"),
            integration=integration,
            user_id=user_id,
            scopes=wanted,
            created_by=created_by,
            created_at=now,
            expires_at=now + (expires_in or self.max_lifetime),
            approved_by=created_by if approved else None,
            approved_at=now if approved else None,
        )
        with self._sessions.begin() as db:
            if user_id is not None and db.get(User, user_id) is None:
                raise AccountError("token_owner", 422)
            db.add(row)
            db.flush()
            info = _info(row)
        self._record(
            created_by,
            "token.created",
            info.id,
            origin,
            owner=info.owner,
            scopes=list(info.scopes),
            expires_at=info.expires_at.isoformat() if info.expires_at else None,
            status="pending" if info.pending else "approved",
        )
        return IssuedToken(token, info)

    def approve(self, token_id: int, *, actor: str, origin: Origin = SYSTEM) -> TokenInfo | None:
        """Lets a pending token authenticate. Approving an approved, revoked or expired token changes nothing."""
        with self._sessions.begin() as db:
            row = db.get(ApiToken, token_id)
            if row is None:
                return None
            if row.revoked_at is not None:
                raise AccountError("token_revoked", 409)
            already = row.approved_at is not None
            if not already:
                row.approved_by = actor
                row.approved_at = self._clock()
            info = _info(row)
        if not already:
            self._record(actor, "token.approved", token_id, origin, owner=info.owner, scopes=list(info.scopes))
        return info

    def list(self, *, created_by: str | None = None) -> list[TokenInfo]:
        stmt = select(ApiToken).order_by(ApiToken.id)
        if created_by is not None:
            stmt = stmt.where(ApiToken.created_by == created_by)
        with self._sessions() as db:
            return [_info(row) for row in db.scalars(stmt)]

    def get(self, token_id: int) -> TokenInfo | None:
        with self._sessions() as db:
            row = db.get(ApiToken, token_id)
            return _info(row) if row else None

    def revoke(self, token_id: int, *, actor: str, origin: Origin = SYSTEM) -> TokenInfo | None:
        with self._sessions.begin() as db:
            row = db.get(ApiToken, token_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            info = _info(row)
        self._record(actor, "token.revoked", token_id, origin, owner=info.owner)
        return info

    def verify(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        now = self._clock()
        with self._sessions.begin() as db:
            row = db.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
            # A token without an expiry predates the rule that every token expires: refused, like a pending one.
            if (
                row is None
                or row.revoked_at is not None
                or row.approved_at is None
                or row.expires_at is None
                or now >= row.expires_at
            ):
                return None
            if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
                row.last_used_at = now
            if row.integration is not None:
                return Principal(
                    kind="integration", subject=f"integration:{row.integration}", scopes=frozenset(row.scopes)
                )
            user = db.get(User, row.user_id)
            if user is None or not user.is_active:
                return None
            role = parse_role(user.role)
            return Principal(
                kind="staff",
                subject=f"user:{user.id}",
                scopes=frozenset(row.scopes) & scopes_of(role),
                role=role,
                team_ids=visible_team_ids(db, role, user.team_id),
            )

    def _record(self, actor: str, action: str, token_id: int, origin: Origin, **details: object) -> None:
        self._audit.record(
            AuditEvent(
                actor=actor,
                action=action,
                object_type="token",
                object_id=str(token_id),
                ip=origin.ip,
                user_agent=origin.user_agent,
                details=dict(details),
            )
        )


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= 120 and all(c.isalnum() or c in "-_." for c in name)


def _info(row: ApiToken) -> TokenInfo:
    owner = f"integration:{row.integration}" if row.integration is not None else f"user:{row.user_id}"
    return TokenInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        owner=owner,
        scopes=tuple(row.scopes),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
    )

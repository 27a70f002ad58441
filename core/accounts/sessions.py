"""Server-side staff sessions: a random cookie value, stored only as its SHA-256, with idle and absolute expiry.

A session is never reused across a sign-in or a change of privilege: `create` always issues a new id and
drops the one the browser brought, so a planted cookie (session fixation) is worth nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.models import StaffSession

# Writing last_seen_at on every request would turn each read into a write; a minute is finer than any timeout.
TOUCH_EVERY = timedelta(seconds=60)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    key: str  # the stored digest; the cookie value itself is never kept
    user_id: int
    csrf_token: str
    auth_method: str
    mfa_verified: bool
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class NewSession:
    cookie: str  # the value to put in the cookie, known only to the browser from now on
    info: SessionInfo


class SessionStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        idle: timedelta,
        absolute: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self.idle = idle
        self.absolute = absolute
        self._clock = clock

    def create(
        self,
        user_id: int,
        *,
        auth_method: str,
        mfa_verified: bool,
        replaces: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> NewSession:
        """A fresh session; the one whose cookie value is `replaces` (if any) stops working."""
        cookie = secrets.token_urlsafe(32)
        now = self._clock()
        row = StaffSession(
            id=digest(cookie),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            auth_method=auth_method,
            mfa_verified=mfa_verified,
            created_at=now,
            last_seen_at=now,
            ip=ip,
            user_agent=(user_agent or "")[:255] or None,
        )
        with self._sessions.begin() as db:
            if replaces:
                db.execute(delete(StaffSession).where(StaffSession.id == digest(replaces)))
            db.add(row)
        return NewSession(cookie, _info(row))

    def get(self, cookie: str) -> SessionInfo | None:
        """The live session for a cookie value; an expired one is deleted and reads as absent."""
        if not cookie or len(cookie) > 128:
            return None
        now = self._clock()
        with self._sessions.begin() as db:
            row = db.get(StaffSession, digest(cookie))
            if row is None:
                return None
            if now >= row.created_at + self.absolute or now >= row.last_seen_at + self.idle:
                db.delete(row)
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                row.last_seen_at = now
            return _info(row)

    def delete(self, cookie: str) -> None:
        with self._sessions.begin() as db:
            db.execute(delete(StaffSession).where(StaffSession.id == digest(cookie)))

    def delete_for_user(self, user_id: int, *, keep: str | None = None) -> int:
        """End every session of a user (password reset, disabled account, new role), except `keep`'s."""
        stmt = delete(StaffSession).where(StaffSession.user_id == user_id)
        if keep is not None:
            stmt = stmt.where(StaffSession.id != digest(keep))
        with self._sessions.begin() as db:
            return db.execute(stmt).rowcount  # type: ignore[attr-defined,no-any-return]

    def count_for_user(self, user_id: int) -> int:
        with self._sessions() as db:
            return len(db.scalars(select(StaffSession.id).where(StaffSession.user_id == user_id)).all())


def _info(row: StaffSession) -> SessionInfo:
    return SessionInfo(
        key=row.id,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        auth_method=row.auth_method,
        mfa_verified=row.mfa_verified,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )

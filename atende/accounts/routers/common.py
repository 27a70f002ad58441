"""Pieces the account routers share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse

from core.accounts.access import AuthContext
from core.accounts.permissions import actions_of
from core.accounts.service import Accounts
from core.accounts.sessions import NewSession, SessionInfo
from core.accounts.types import StaffUser


def session_body(accounts: Accounts, user: StaffUser, session: SessionInfo) -> dict[str, Any]:
    """What the console needs to know about the signed-in member (GET /api/auth/me and sign-in answers)."""
    now = accounts.clock()
    restrictions = accounts.authn.restrictions(user, session)
    return {
        "user": user.as_dict(now),
        "restrictions": sorted(restrictions),
        "permissions": [] if restrictions else actions_of(user.role),
        "csrf_token": session.csrf_token,
        "session": {
            "auth_method": session.auth_method,
            "created_at": session.created_at.isoformat(),
            "expires_at": _expiry(accounts, session).isoformat(),
        },
    }


def _expiry(accounts: Accounts, session: SessionInfo) -> datetime:
    return min(session.created_at + accounts.sessions.absolute, session.last_seen_at + accounts.sessions.idle)


def with_session(
    accounts: Accounts, user: StaffUser, new: NewSession, *, extra: dict[str, Any] | None = None
) -> JSONResponse:
    """A JSON answer that also hands the browser its (new) session cookie."""
    response = JSONResponse({**session_body(accounts, user, new.info), **(extra or {})})
    accounts.cookies.set_session(response, new.cookie, new.info.csrf_token)
    return response


def actor(context: AuthContext) -> str:
    return context.principal.subject


def sees_everything(context: AuthContext) -> bool:
    """Administrators and integrations holding users:admin see every team; supervisors only theirs."""
    return context.principal.kind == "integration" or context.principal.role == "admin"

"""API tokens: administrators issue any; integrators issue domain-API tokens and see only their own.

An integrator's token with data scopes waits for an administrator's approval (POST /api/tokens/{id}/approve).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, status

from atende.accounts.routers.common import actor
from atende.accounts.schemas import TokenCreateIn
from atende.deps import AccountsDep, CurrentAuth
from core.accounts.access import AuthContext, origin_of
from core.accounts.permissions import GRANTABLE_SCOPES, PII_SCOPE
from core.accounts.tokens import TokenInfo
from core.accounts.types import AccountError
from core.audit_http import mark_audited
from core.db import RowId
from core.i18n import t

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


def _manages_all(context: AuthContext) -> bool:
    return context.principal.role == "admin"


def _is_admin(context: AuthContext) -> bool:
    """Administrators' own tokens and sessions issue approved tokens; anyone else's data tokens wait."""
    return context.principal.kind == "staff" and context.principal.role == "admin"


def _grantable(context: AuthContext) -> frozenset[str]:
    principal = context.principal
    if principal.kind != "staff":
        # A token can only hand on what it holds itself, and never personal data or acting for citizens.
        return principal.scopes - {PII_SCOPE, "assistant"}
    allowed = GRANTABLE_SCOPES.get(principal.role, frozenset()) if principal.role else frozenset()
    return allowed if context.via == "session" else allowed & principal.scopes


def _own(context: AuthContext, info: TokenInfo | None) -> TokenInfo:
    if info is None or not (_manages_all(context) or info.created_by == actor(context)):
        raise AccountError("token_not_found", 404)
    return info


@router.get("", summary="Issued tokens (never the tokens themselves)")
def list_tokens(context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    created_by = None if _manages_all(context) else actor(context)
    return {"tokens": [info.as_dict() for info in accounts.tokens.list(created_by=created_by)]}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Issue a token; the answer is the only time it is shown")
def issue_token(body: TokenCreateIn, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    refused = sorted(set(body.scopes) - _grantable(context))
    if refused:
        raise AccountError("scope_not_grantable", 403, scopes=", ".join(refused))
    owner_id = None
    if body.integration is None:
        if context.user is None:
            raise AccountError("token_owner", 422)
        owner_id = context.user.id
    issued = accounts.tokens.issue(
        name=body.name,
        scopes=body.scopes,
        created_by=actor(context),
        integration=body.integration,
        user_id=owner_id,
        expires_in=timedelta(days=body.expires_in_days) if body.expires_in_days else None,
        issuer_is_admin=_is_admin(context),
        origin=origin_of(request),
    )
    mark_audited(request)
    reply: dict[str, Any] = {"token": issued.token, **issued.info.as_dict()}
    if issued.info.pending:
        reply["notice"] = t("auth.error.token_pending_approval")
    return reply


@router.post("/{token_id}/approve", summary="Approve a token waiting for an administrator (data scopes)")
def approve_token(token_id: int, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    pending = accounts.tokens.get(token_id)
    if pending is not None and pending.pending and pending.created_by == actor(context):
        # Only a token's issuer who is not an administrator leaves it pending: a second person approves it.
        raise AccountError("token_self_approval", 403)
    info = accounts.tokens.approve(token_id, actor=actor(context), origin=origin_of(request))
    if info is None:
        raise AccountError("token_not_found", 404)
    mark_audited(request)
    return info.as_dict()


@router.delete("/{token_id}", summary="Revoke a token (it stops working at once)")
def revoke_token(token_id: RowId, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    _own(context, accounts.tokens.get(token_id))
    info = accounts.tokens.revoke(token_id, actor=actor(context), origin=origin_of(request))
    if info is None:
        raise AccountError("token_not_found", 404)
    mark_audited(request)
    return info.as_dict()

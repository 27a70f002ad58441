"""Staff accounts: administrators manage them; supervisors list those of their teams."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from atende.accounts.routers.common import actor, sees_everything
from atende.accounts.schemas import UserCreateIn, UserUpdateIn
from atende.deps import AccountsDep, CurrentAuth
from core.accounts.access import AuthContext, origin_of
from core.accounts.directory import UserChanges
from core.accounts.types import AccountError, StaffUser
from core.audit_http import mark_audited
from core.db import RowId

router = APIRouter(prefix="/api/users", tags=["users"])


def _visible(accounts: AccountsDep, context: AuthContext, user_id: RowId) -> StaffUser:
    """The account, if this caller may see it; someone else's team answers 404, like an unknown id."""
    user = accounts.directory.get(user_id)
    if user is None or not (sees_everything(context) or user.team_id in context.principal.team_ids):
        raise AccountError("user_not_found", 404)
    return user


@router.get("", summary="Staff accounts (supervisors: their teams)")
def list_users(context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    teams = None if sees_everything(context) else context.principal.team_ids
    now = accounts.clock()
    return {"users": [u.as_dict(now) for u in accounts.directory.users(team_ids=teams)]}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an account")
def create_user(body: UserCreateIn, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    user, temporary = accounts.directory.create_user(
        body.username,
        body.role,
        team=body.team_id,
        password=body.password,
        display_name=body.display_name,
        email=body.email,
        actor=actor(context),
        origin=origin_of(request),
    )
    mark_audited(request)
    return {"user": user.as_dict(accounts.clock()), "temporary_password": temporary}


@router.get("/{user_id}", summary="One account")
def get_user(user_id: RowId, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    return {"user": _visible(accounts, context, user_id).as_dict(accounts.clock())}


@router.patch("/{user_id}", summary="Change role, team, name, e-mail or whether the account is active")
def update_user(
    user_id: RowId, body: UserUpdateIn, request: Request, context: CurrentAuth, accounts: AccountsDep
) -> dict[str, Any]:
    given = {name: getattr(body, name) for name in body.model_fields_set}
    if context.user is not None and context.user.id == user_id and given.keys() & {"role", "is_active"}:
        # Nobody demotes or disables themselves: the last administrator would lock everyone out.
        raise AccountError("cannot_change_self", 409)
    if given.get("role") is None:
        given.pop("role", None)
    if given.get("is_active") is None:
        given.pop("is_active", None)
    if "display_name" in given and given["display_name"] is None:
        given["display_name"] = ""
    user = accounts.directory.update_user(
        user_id, UserChanges(**given), actor=actor(context), origin=origin_of(request)
    )
    mark_audited(request)
    return {"user": user.as_dict(accounts.clock())}


@router.post("/{user_id}/unlock", summary="Lift a lock-out")
def unlock(user_id: RowId, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    user = accounts.directory.unlock(user_id, actor=actor(context), origin=origin_of(request))
    mark_audited(request)
    return {"user": user.as_dict(accounts.clock())}


@router.post("/{user_id}/reset-2fa", summary="Remove two-factor (lost phone); the member enrols again")
def reset_two_factor(user_id: RowId, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    user = accounts.directory.reset_two_factor(user_id, actor=actor(context), origin=origin_of(request))
    mark_audited(request)
    return {"user": user.as_dict(accounts.clock())}


@router.post("/{user_id}/reset-password", summary="A temporary password, to be changed at the next sign-in")
def reset_password(user_id: RowId, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    user, temporary = accounts.directory.reset_password(user_id, actor=actor(context), origin=origin_of(request))
    mark_audited(request)
    return {"user": user.as_dict(accounts.clock()), "temporary_password": temporary}

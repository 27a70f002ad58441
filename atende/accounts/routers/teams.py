"""Teams (setores) and their hierarchy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from atende.accounts.routers.common import actor, sees_everything
from atende.accounts.schemas import TeamCreateIn, TeamUpdateIn
from atende.deps import AccountsDep, CurrentAuth
from core.accounts.access import origin_of
from core.accounts.directory import UNSET
from core.audit_http import mark_audited
from core.db import RowId

router = APIRouter(prefix="/api/teams", tags=["teams"])


@router.get("", summary="Teams (supervisors: theirs and those below)")
def list_teams(context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    only = None if sees_everything(context) else context.principal.team_ids
    return {"teams": [team.as_dict() for team in accounts.directory.teams(only=only)]}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a team")
def create_team(body: TeamCreateIn, request: Request, context: CurrentAuth, accounts: AccountsDep) -> dict[str, Any]:
    team = accounts.directory.create_team(
        body.name, parent=body.parent_id, actor=actor(context), origin=origin_of(request)
    )
    mark_audited(request)
    return {"team": team.as_dict()}


@router.patch("/{team_id}", summary="Rename a team or move it under another")
def update_team(
    team_id: RowId, body: TeamUpdateIn, request: Request, context: CurrentAuth, accounts: AccountsDep
) -> dict[str, Any]:
    team = accounts.directory.update_team(
        team_id,
        name=body.name,
        parent_id=body.parent_id if "parent_id" in body.model_fields_set else UNSET,
        actor=actor(context),
        origin=origin_of(request),
    )
    mark_audited(request)
    return {"team": team.as_dict()}

"""Saved replies of the agents' console: agents search their team's, supervisors keep them.

Who may call what is declared in core/accounts/permissions.py (reading: "conversation.read"; changing:
"saved_replies.manage"). Content errors come from the service, with a pt-BR `detail`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from atende.api_errors import ApiError
from atende.console.access import scope_of
from atende.deps import CurrentAuth, HandoffDep, SavedRepliesDep
from core.db import RowId
from core.principals import Principal
from handoff.records import HandoffError
from handoff.saved_replies import MAX_QUERY, MAX_TEAM, SavedReplyError, SavedReplyView

router = APIRouter(prefix="/api/console/saved-replies", tags=["console"])

ReplyId = Annotated[RowId, Path()]


class SavedReplyIn(BaseModel):
    """Lengths and emptiness are checked by the service, so the refusal names the field in Portuguese."""

    model_config = ConfigDict(extra="forbid")
    team: str
    title: str
    text: str


def _refused(exc: SavedReplyError) -> ApiError:
    return ApiError(exc.code, exc.key, exc.status, **exc.params)


def _out(view: SavedReplyView) -> dict[str, Any]:
    return view.as_dict()


def _require_team(handoff: HandoffDep, principal: Principal, *teams: str) -> None:
    """Staff keep and read only their own teams' replies (administrators: every team's), as with conversations:
    a reply another team's supervisor could rewrite is text that team's agents send to citizens."""
    scope = scope_of(handoff, principal)
    if not all(scope.sees_queue(team) for team in teams if team):  # an empty team is the service's 422
        raise HandoffError("other_team", "saved_replies.error.other_team", status=403)


def _existing(replies: SavedRepliesDep, reply_id: int) -> SavedReplyView:
    view = replies.get(reply_id)
    if view is None:
        raise ApiError("saved_reply_not_found", "saved_replies.error.not_found", 404)
    return view


@router.get("", summary="A team's saved replies holding every word of q (accents and case ignored)")
def search(
    replies: SavedRepliesDep,
    handoff: HandoffDep,
    auth: CurrentAuth,
    team: Annotated[str | None, Query(max_length=MAX_TEAM, description="A handoff team; all teams without")] = None,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    scope = scope_of(handoff, auth.principal)
    if team is not None:
        _require_team(handoff, auth.principal, team)
    found = [view for view in replies.search(team, q, limit=limit) if scope.sees_queue(view.team)]
    return {"replies": [_out(view) for view in found]}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Save a reply for a team")
def create(body: SavedReplyIn, replies: SavedRepliesDep, handoff: HandoffDep, auth: CurrentAuth) -> dict[str, Any]:
    _require_team(handoff, auth.principal, body.team.strip())
    try:
        view = replies.create(team=body.team, title=body.title, text=body.text, author=auth.principal.subject)
    except SavedReplyError as exc:
        raise _refused(exc) from exc
    return _out(view)


@router.put("/{reply_id}", summary="Replace a saved reply's team, title and text")
def update(
    reply_id: ReplyId, body: SavedReplyIn, replies: SavedRepliesDep, handoff: HandoffDep, auth: CurrentAuth
) -> dict[str, Any]:
    _require_team(handoff, auth.principal, _existing(replies, reply_id).team, body.team.strip())
    try:
        view = replies.update(reply_id, team=body.team, title=body.title, text=body.text)
    except SavedReplyError as exc:
        raise _refused(exc) from exc
    return _out(view)


@router.delete("/{reply_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a saved reply")
def delete(reply_id: ReplyId, replies: SavedRepliesDep, handoff: HandoffDep, auth: CurrentAuth) -> Response:
    _require_team(handoff, auth.principal, _existing(replies, reply_id).team)
    try:
        replies.delete(reply_id)
    except SavedReplyError as exc:
        raise _refused(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Saved replies of the agents' console: agents search their team's, supervisors keep them.

Who may call what is declared in atende/accounts/permissions.py (reading: "conversation.read"; changing:
"saved_replies.manage"). Content errors come from the service, with a pt-BR `detail`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from atende.api_errors import ApiError
from atende.db import RowId
from atende.deps import CurrentAuth, SavedRepliesDep
from atende.handoff.saved_replies import MAX_QUERY, MAX_TEAM, SavedReplyError, SavedReplyView

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


@router.get("", summary="A team's saved replies holding every word of q (accents and case ignored)")
def search(
    replies: SavedRepliesDep,
    team: Annotated[str | None, Query(max_length=MAX_TEAM, description="A handoff team; all teams without")] = None,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    return {"replies": [_out(view) for view in replies.search(team, q, limit=limit)]}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Save a reply for a team")
def create(body: SavedReplyIn, replies: SavedRepliesDep, auth: CurrentAuth) -> dict[str, Any]:
    try:
        view = replies.create(team=body.team, title=body.title, text=body.text, author=auth.principal.subject)
    except SavedReplyError as exc:
        raise _refused(exc) from exc
    return _out(view)


@router.put("/{reply_id}", summary="Replace a saved reply's team, title and text")
def update(reply_id: ReplyId, body: SavedReplyIn, replies: SavedRepliesDep) -> dict[str, Any]:
    try:
        view = replies.update(reply_id, team=body.team, title=body.title, text=body.text)
    except SavedReplyError as exc:
        raise _refused(exc) from exc
    return _out(view)


@router.delete("/{reply_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a saved reply")
def delete(reply_id: ReplyId, replies: SavedRepliesDep) -> Response:
    try:
        replies.delete(reply_id)
    except SavedReplyError as exc:
        raise _refused(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""The hand-off tool: the conversation goes to a human agent's queue."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from domain.access import Caller
from domain.catalog import DEFAULT_TEAM, TEAMS, normalize_key
from domain.errors import DomainError
from tools_mcp.tools.base import WRITE, Registration, ToolContext, ToolDeps, run


class HandoffResult(BaseModel):
    handoff: bool
    team: str
    queue_position: int | None


async def handoff_to_human(
    ctx: ToolContext,
    reason: Annotated[str, Field(description="Why a person is needed, in one sentence (motivo)")],
    team: Annotated[
        str | None,
        Field(
            description="Team: atendimento (general), obras, limpeza_urbana, meio_ambiente, tributos, saude, "
            "ouvidoria; unknown or omitted means atendimento"
        ),
    ] = None,
) -> Annotated[CallToolResult, HandoffResult]:
    """Hands the conversation over to a human agent of the given team."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        access = deps.access
        access.mode(caller, "citizens:write")
        if caller.conversation_id is None:
            raise DomainError("invalid_argument", "tools.error.no_conversation")
        key = normalize_key(team or "")
        chosen = key if key in TEAMS else DEFAULT_TEAM
        position = deps.domain.handoffs.enqueue(
            caller.conversation_id, team=chosen, reason=(reason or "").strip()[:500]
        )
        access.record(caller, "conversation.handoff", "conversation", caller.conversation_id, team=chosen)
        return {"handoff": True, "team": chosen, "queue_position": position}

    return await run(ctx, "handoff_to_human", work, HandoffResult)


TOOLS: tuple[Registration, ...] = ((handoff_to_human, WRITE),)

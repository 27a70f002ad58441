"""Who may see and act on a conversation in the console: one rule, from role, setor and assignment.

| who                                   | queue, board         | read (masked) | claim | act | reveal | supervise |
|---------------------------------------|----------------------|---------------|-------|-----|--------|-----------|
| the agent serving it now              | —                    | yes           | —     | yes | yes    | —         |
| agent of its queue's setor            | their queues         | yes           | yes   | no  | no     | no        |
| supervisor of its setor (or above it) | their queues         | yes           | yes   | yes | yes    | yes       |
| staff of another setor                | —                    | no            | no    | no  | no     | no        |
| administrator                         | every queue, no text | no            | no    | no  | no     | no        |
| integration (bearer token, no user)   | nothing              | no            | no    | no  | no     | no        |

"act": reply, note, copilot, copilot actions, transfer, close. A conversation's queue is its latest handoff's
team; a staff member's queues are those of their setor (accounts team, and for a supervisor every setor below),
or the default queue when they belong to none — as routing gives an agent without a profile the default queue.
See docs/decisions/0036-console-access.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.principals import Principal
from core.store import ConversationNotFound
from handoff.records import HandoffError, HandoffView
from handoff.service import HandoffService
from handoff.teams import staff_queues

log = logging.getLogger(__name__)

Need = Literal["read", "claim", "act", "reveal", "supervise"]


@dataclass(frozen=True)
class Scope:
    """The queues a principal works in (None: every queue, for metadata only) and whether it reads content."""

    subject: str
    role: str | None
    queues: frozenset[str] | None

    @property
    def reads_content(self) -> bool:
        return self.role in ("agent", "supervisor")

    def sees_queue(self, team: str | None) -> bool:
        return self.queues is None or (team is not None and team in self.queues)

    def sees_event(self, event: Mapping[str, Any]) -> bool:
        """A queue-topic event about a conversation reaches its queue's staff and the agents it names; presence,
        service staff and administrators. Events without a conversation id come from the conversation topic,
        whose subscription was checked."""
        if event.get("event") == "presence":
            return self.reads_content or self.role == "admin"
        if "conversation_id" not in event:
            return True
        if self.subject in (event.get("agent"), event.get("from")):
            return True
        return self.sees_queue(event.get("team"))


def scope_of(handoff: HandoffService, principal: Principal) -> Scope:
    if principal.kind != "staff":
        return Scope(principal.subject, None, frozenset())
    if principal.role == "admin":
        return Scope(principal.subject, principal.role, None)
    if principal.role not in ("agent", "supervisor"):
        return Scope(principal.subject, principal.role, frozenset())
    with handoff.session() as session:
        queues = staff_queues(session, principal.team_ids, handoff.config.default_team)
    return Scope(principal.subject, principal.role, queues)


def require_access(
    handoff: HandoffService, principal: Principal, conversation_id: str, need: Need
) -> HandoffView | None:
    """The conversation's latest handoff when `principal` may do `need` on it; else 403 (404: no conversation)."""
    if handoff.store.get_conversation(conversation_id) is None:
        raise ConversationNotFound(conversation_id)
    current = handoff.current(conversation_id)
    scope = scope_of(handoff, principal)
    serving = current is not None and current.status == "with_agent" and current.agent == principal.subject
    if not scope.reads_content:
        refused = HandoffError("no_access", "handoff.error.no_access", status=403)
    elif serving and need != "supervise" and need != "claim":
        return current
    elif current is None or not scope.sees_queue(current.team):
        refused = HandoffError("other_team", "handoff.error.other_team", status=403)
    elif need in ("read", "claim") or scope.role == "supervisor":
        return current
    else:  # an agent of the setor who is not serving it: act, reveal, supervise
        refused = HandoffError("not_assigned", "handoff.error.not_assigned", status=403)
    log.info("console %s on %s refused to %s: %s", need, conversation_id, principal.subject, refused.code)
    raise refused

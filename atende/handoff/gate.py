"""Where a channel meets the handoff: a citizen's message goes to the agent, or the bot's reply may hand off.

A channel calls `forward_to_agent` before the assistant (a waiting or served conversation is the agent's, not
the bot's) and `hand_off_if_needed` after it (a handoff reply or repeated abstentions queue the conversation).
"""

from __future__ import annotations

from typing import Any

from atende.handoff.service import HandoffService, Ticket
from atende.handoff.triggers import handoff_reason
from atende.i18n import t

HANDED_OFF = frozenset({"waiting", "with_agent"})


def queued_notice(ticket: Ticket) -> str:
    """ "You are number N in the queue", with the estimated wait when the team's pace is known."""
    notice = t("handoff.queued", position=ticket.position)
    if ticket.estimated_wait_s is not None:
        notice += " " + t("handoff.estimate", minutes=max(1, round(ticket.estimated_wait_s / 60)))
    return notice


def forward_to_agent(handoff: HandoffService | None, conversation_id: str, text: str) -> dict[str, Any] | None:
    """The reply body for a message forwarded to the agent, or None when the bot should answer it."""
    if handoff is None:
        return None
    conversation = handoff.store.get_conversation(conversation_id)
    if conversation is None or conversation.state not in HANDED_OFF:
        return None
    message = handoff.citizen_message(conversation_id, text)
    ticket = handoff.ticket(conversation_id)
    answer = t("handoff.forwarded")
    if ticket.position is not None:
        answer = queued_notice(ticket)
    return {
        "answer": answer,
        "decision": "handoff",
        "route": "human",
        "citations": [],
        "message_id": message.id,
        "timings_ms": {},
    }


def hand_off_if_needed(handoff: HandoffService | None, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Queue the conversation when the bot's reply calls for a person; the citizen is told their place."""
    if handoff is None:
        return body
    messages = handoff.store.list_messages(conversation_id, limit=6)
    reason = handoff_reason(messages)
    if reason is None:
        return body
    conversation = handoff.store.get_conversation(conversation_id)
    if conversation is None or conversation.state in HANDED_OFF:
        return body
    ticket = handoff.request(conversation_id, reason=reason, source=reason)
    if ticket.opens_at is not None:
        local = ticket.opens_at.astimezone(handoff.hours[ticket.team].zone)
        notice = t("handoff.after_hours", day=local.strftime("%d/%m"), time=local.strftime("%H:%M"))
        return {**body, "answer": notice, "decision": "handoff"}
    if ticket.position is None:
        return body
    # Told in this reply only: a stored copy would show twice in the web chat, which polls for agent messages.
    notice = queued_notice(ticket)
    return {**body, "answer": f"{body['answer']}\n\n{notice}", "decision": "handoff"}

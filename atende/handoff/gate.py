"""Where a channel meets the handoff: a citizen's message goes to the agent, or the bot's reply may hand off.

A channel calls `forward_to_agent` before the assistant (a waiting or served conversation is the agent's, not
the bot's) and `hand_off_if_needed` after it (a handoff reply or repeated abstentions queue the conversation).
A channel that commits its reply in the same transaction as the bot's turn (WhatsApp, decision 0025) uses the
`…_in` forms inside that transaction and announces the result after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.handoff.service import HandoffService, Requested, Ticket
from atende.handoff.topics import TopicMatch
from atende.handoff.triggers import handoff_reason
from atende.i18n import t
from atende.models import Conversation
from atende.store import MessageView

HANDED_OFF = frozenset({"waiting", "with_agent"})


def queued_notice(ticket: Ticket) -> str:
    """ "You are number N in the queue", with the estimated wait when the team's pace is known."""
    notice = t("handoff.queued", position=ticket.position)
    if ticket.estimated_wait_s is not None:
        notice += " " + t("handoff.estimate", minutes=max(1, round(ticket.estimated_wait_s / 60)))
    return notice


def handoff_notice(handoff: HandoffService, ticket: Ticket) -> str | None:
    """What the citizen is told about a request: when the closed team opens, or their place; None: nothing new."""
    if ticket.opens_at is not None:
        local = ticket.opens_at.astimezone(handoff.hours[ticket.team].zone)
        return t("handoff.after_hours", day=local.strftime("%d/%m"), time=local.strftime("%H:%M"))
    if ticket.state == "with_agent" and ticket.position is None:
        return t("handoff.connected")  # routed to an agent at once (least-busy teams)
    if ticket.position is None:
        return None
    return queued_notice(ticket)


def forward_to_agent(handoff: HandoffService | None, conversation_id: str, text: str) -> dict[str, Any] | None:
    """The reply body for a message forwarded to the agent, or None when the bot should answer it."""
    if handoff is None:
        return None
    conversation = handoff.store.get_conversation(conversation_id)
    if conversation is None or conversation.state not in HANDED_OFF:
        return None
    message = handoff.citizen_message(conversation_id, text)
    handoff.annotate(message.id, text)  # the agent's console shows the sentiment trend
    handoff.translate_incoming(message)  # and, in another language, the translation
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


def forward_to_agent_in(
    handoff: HandoffService, session: Session, conversation_id: str, text: str
) -> MessageView | None:
    """`forward_to_agent` inside the caller's transaction: the stored message (`handoff.push` it and
    `handoff.translate_incoming` it once committed), or None when the bot should answer it."""
    state = session.scalar(select(Conversation.state).where(Conversation.id == conversation_id))
    if state not in HANDED_OFF:
        return None
    message = handoff.citizen_message_in(session, conversation_id, text)
    handoff.annotate_in(session, message.id, text)
    return message


def hand_off_if_needed(
    handoff: HandoffService | None, conversation_id: str, body: dict[str, Any], *, tools: Sequence[str] = ()
) -> dict[str, Any]:
    """Queue the conversation when the bot's reply calls for a person; the citizen is told their place.

    `tools`: what the turn called successfully, for the topics that need a person (`HandoffService.topics`).
    """
    if handoff is None:
        return body
    messages = handoff.store.list_messages(conversation_id, limit=6)
    asked = _latest_citizen_message(messages)
    latest = None if asked is None else handoff.annotate(asked.id, asked.text)
    reason = handoff_reason(messages, latest)
    topic = None if reason is not None else _topic(handoff, messages, tools)
    if reason is None and topic is None:
        return body
    conversation = handoff.store.get_conversation(conversation_id)
    if conversation is None or conversation.state in HANDED_OFF:
        return body
    if topic is not None:
        ticket = handoff.request(
            conversation_id, reason=topic.reason, source="topic", team=topic.rule.team, skill=topic.rule.skill
        )
    else:
        ticket = handoff.request(conversation_id, reason=str(reason), source=str(reason))
    return with_notice(body, handoff_notice(handoff, ticket), after_hours=ticket.opens_at is not None)


def _topic(handoff: HandoffService, messages: Sequence[MessageView], tools: Sequence[str]) -> TopicMatch | None:
    """A topic rule for the bot's latest reply: an article it cited or a tool its turn called."""
    if not handoff.topics:
        return None
    reply = next((m for m in reversed(messages) if m.role == "assistant"), None)
    if reply is None:
        return None
    cited = [str(c.get("doc_id")) for c in reply.citations if c.get("doc_id")]
    return handoff.topics.match(cited, tools)


def hand_off_in(
    handoff: HandoffService, session: Session, conversation_id: str, *, team: str | None = None
) -> Requested | None:
    """`hand_off_if_needed` inside the transaction that records the bot's reply; `handoff.announce` the result once
    committed and tell the citizen `handoff_notice(handoff, result.ticket())`. None: no handoff now."""
    messages = handoff.recent_messages(session, conversation_id)
    asked = _latest_citizen_message(messages)
    latest = None if asked is None else handoff.annotate_in(session, asked.id, asked.text)
    reason = handoff_reason(messages, latest)
    topic = None if reason is not None else _topic(handoff, messages, ())
    if reason is None and topic is None:
        return None
    state = session.scalar(select(Conversation.state).where(Conversation.id == conversation_id))
    if state is None or state in HANDED_OFF:
        return None
    if topic is not None:
        return handoff.request_in(
            session,
            conversation_id,
            reason=topic.reason,
            source="topic",
            team=topic.rule.team or team,
            skill=topic.rule.skill,
        )
    return handoff.request_in(session, conversation_id, reason=str(reason), source=str(reason), team=team)


def _latest_citizen_message(messages: Sequence[MessageView]) -> MessageView | None:
    return next((m for m in reversed(messages) if m.role == "user"), None)


def with_notice(body: dict[str, Any], notice: str | None, *, after_hours: bool) -> dict[str, Any]:
    """The bot's reply with the handoff notice: instead of it after hours, after it otherwise."""
    if notice is None:
        return body
    if after_hours:
        return {**body, "answer": notice, "decision": "handoff"}
    # Told in this reply only: a stored copy would show twice in the web chat, which polls for agent messages.
    return {**body, "answer": f"{body['answer']}\n\n{notice}", "decision": "handoff"}

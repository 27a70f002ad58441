"""Where a conversation meets the handoff: a citizen's message goes to the agent, or the bot's reply may hand off.

The conversation service calls `forward_to_agent` before the assistant and `hand_off` after it, both inside the
transaction that stores the turn, and announces the result after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import t
from core.models import Conversation
from core.store import HANDED_OFF, MessageView
from core.topics import TopicMatch
from handoff.records import Requested, Ticket
from handoff.service import HandoffService
from handoff.triggers import handoff_reason


def queued_notice(ticket: Ticket) -> str:
    """ "You are number N in the queue", with the estimated wait when the team's pace is known."""
    notice = t("handoff.queued", position=ticket.position)
    if ticket.estimated_wait_s is not None:
        notice += " " + t("handoff.estimate", minutes=max(1, round(ticket.estimated_wait_s / 60)))
    return notice


def handoff_notice(handoff: HandoffService, ticket: Ticket) -> str | None:
    """What the citizen is told about a request: when the closed team opens, or their place; None: nothing new."""
    if ticket.opens_at is not None:
        local = ticket.opens_at.astimezone(handoff.config.hours[ticket.team].zone)
        return t("handoff.after_hours", day=local.strftime("%d/%m"), time=local.strftime("%H:%M"))
    if ticket.state == "with_agent" and ticket.position is None:
        return t("handoff.connected")  # routed to an agent at once (least-busy teams)
    if ticket.position is None:
        return None
    return queued_notice(ticket)


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A citizen's message stored for the agent, and what the citizen is told about it."""

    message: MessageView
    answer: str
    team: str


def forward_to_agent(handoff: HandoffService, session: Session, conversation_id: str, text: str) -> Forwarded | None:
    """The citizen's message stored for the agent in the caller's transaction (`delivered_to_agent` once
    committed), or None when the bot should answer it: a waiting or served conversation is the agent's, not the
    bot's."""
    state = session.scalar(select(Conversation.state).where(Conversation.id == conversation_id))
    if state not in HANDED_OFF:
        return None
    message = handoff.citizen_message_in(session, conversation_id, text)
    handoff.annotate_in(session, message.id, text)  # the agent's console shows the sentiment trend
    ticket = handoff.ticket(conversation_id)
    answer = queued_notice(ticket) if ticket.position is not None else t("handoff.forwarded")
    return Forwarded(message, answer, ticket.team)


def delivered_to_agent(handoff: HandoffService, forwarded: Forwarded) -> None:
    """After the commit: the consoles see the message, and its translation when the citizen writes another
    language (the model may take seconds, so never inside the transaction)."""
    handoff.push(forwarded.message)
    handoff.translate_incoming(forwarded.message)


def _topic(handoff: HandoffService, messages: Sequence[MessageView], tools: Sequence[str]) -> TopicMatch | None:
    """A topic rule for the bot's latest reply: an article it cited or a tool its turn called."""
    if not handoff.config.topics:
        return None
    reply = next((m for m in reversed(messages) if m.role == "assistant"), None)
    if reply is None:
        return None
    cited = [str(c.get("doc_id")) for c in reply.citations if c.get("doc_id")]
    return handoff.config.topics.match(cited, tools)


def hand_off(
    handoff: HandoffService,
    session: Session,
    conversation_id: str,
    *,
    team: str | None = None,
    tools: Sequence[str] = (),
) -> Requested | None:
    """Queue the conversation, in the transaction that records the bot's reply, when the reply calls for a person
    (a handoff reply, repeated abstentions, the citizen's sentiment, a topic that needs one); `handoff.announce` the
    result once committed and tell the citizen `handoff_notice(handoff, result.ticket())`. None: no handoff now.

    `team`: the channel account's team; `tools`: what the turn called successfully, for the topics that need a
    person (`HandoffConfig.topics`)."""
    messages = handoff.recent_messages(session, conversation_id)
    asked = _latest_citizen_message(messages)
    latest = None if asked is None else handoff.annotate_in(session, asked.id, asked.text)
    reason = handoff_reason(messages, latest)
    topic = None if reason is not None else _topic(handoff, messages, tools)
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


def with_notice(handoff: HandoffService, answer: str, requested: Requested | None) -> str:
    """The bot's answer with what the citizen is told about a handoff it made: instead of the answer after hours,
    after it otherwise.

    Told in this reply only: a stored copy would show twice in the web chat, which polls for agent messages."""
    notice = None if requested is None else handoff_notice(handoff, requested.ticket())
    if notice is None or requested is None:
        return answer
    return notice if requested.opens_at is not None else f"{answer}\n\n{notice}"

"""What every part of the handoff shares: its settings, the database, the live state, the clock, the agents'
profiles and the setors' queues, the channels' deliveries, and the row steps each part takes inside a transaction.

Every state change is a conditional UPDATE (`move`: `WHERE state = <expected>`), so the database decides races: of
two agents taking one conversation exactly one changes the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import Conversation, Event, Message
from core.store import ConversationNotFound, ConversationStore, MessageView
from core.topics import TopicRules
from handoff.assignment import AssignmentRules, Profiles
from handoff.delivery import Delivery, DeliveryRefused, LiveDelivery, Outgoing
from handoff.hours import BusinessHours
from handoff.live import LiveState
from handoff.models import Handoff
from handoff.records import HandoffError, conversation_topic
from handoff.teams import TeamDirectory

log = logging.getLogger(__name__)

DEFAULT_TEAM: Final = "atendimento"

_LIVE: Final = LiveDelivery()


@dataclass(frozen=True, slots=True)
class HandoffConfig:
    """The handoff's settings (ATENDE_HANDOFF_*)."""

    default_team: str = DEFAULT_TEAM
    locale: str = "pt-BR"
    agent_language: str = "pt-BR"  # what agents read and write unless a caller names theirs
    lock_ttl_s: float = 30.0
    presence_ttl_s: float = 60.0  # an agent whose console stops beating for this long is offline
    hours: Mapping[str, BusinessHours] = field(default_factory=dict)  # teams without an entry are always open
    assignment: AssignmentRules = field(default_factory=AssignmentRules)
    topics: TopicRules = field(default_factory=TopicRules)  # articles and tools whose cases a person must handle


class HandoffContext:
    """The wiring the handoff's parts share; `config` may be replaced as a whole and every part sees the change."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: ConversationStore,
        live: LiveState,
        config: HandoffConfig,
        clock: Callable[[], datetime],
        *,
        profiles: Profiles | None = None,
        teams: TeamDirectory | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.live = live
        self.config = config
        self.clock = clock
        self.profiles = profiles or Profiles(
            default_team=config.default_team, default_capacity=3, default_languages=(config.agent_language,)
        )
        # None (bare wiring): any queue name is accepted; build_services wires the setors' directory.
        self.teams = teams
        # How agents' messages and the survey reach citizens of each channel; unlisted channels read the
        # conversation live (the web chat).
        self.deliveries: dict[str, Delivery] = {}

    def register_delivery(self, channel: str, delivery: Delivery) -> None:
        self.deliveries[channel] = delivery

    def delivery(self, channel: str) -> Delivery:
        return self.deliveries.get(channel) or _LIVE

    def language_of(self, session: Session, agent: str) -> str:
        """The language an agent reads and writes: the first of their profile's (the default profile: the setting)."""
        languages = self.profiles.get(session, agent).languages
        return languages[0] if languages else self.config.agent_language

    def push(self, message: MessageView) -> None:
        """Show a committed message on the consoles that follow its conversation."""
        self.live.publish(
            conversation_topic(message.conversation_id),
            {
                "event": "message",
                # Ids only: a console reads the text through the checked, masked conversation endpoint.
                "message": {"id": message.id, "role": message.role, "created_at": message.created_at.isoformat()},
            },
        )

    def notify_in(self, session: Session, conversation_id: str, key: str, text: str) -> MessageView:
        """A system message to the citizen, stored and handed to their channel (never lost when it refuses)."""
        now = self.clock()
        message = Message(conversation_id=conversation_id, role="system", text=text, citations=[], created_at=now)
        session.add(message)
        session.flush()
        try:
            self.delivery(channel_of(session, conversation_id)).deliver(
                session, conversation_id, Outgoing(f"notice:{key}", text)
            )
        except DeliveryRefused as exc:
            log.warning("notice to conversation %s not delivered: %s", conversation_id, exc.code)
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="notice_not_delivered",
                    payload={"code": exc.code, "key": key},
                    created_at=now,
                )
            )
        return MessageView(message.id, conversation_id, "system", text, None, (), now)

    def citizen_message(self, conversation_id: str, text: str) -> MessageView:
        """A citizen's message while waiting for or talking to a person: stored and pushed, never to the bot."""
        message = self.store.add_message(conversation_id, "user", text)
        self.push(message)
        return message

    def citizen_message_in(self, session: Session, conversation_id: str, text: str) -> MessageView:
        """`citizen_message` inside the caller's transaction; `push` the returned message once committed."""
        now = self.clock()
        row = Message(conversation_id=conversation_id, role="user", text=text, citations=[], created_at=now)
        session.add(row)
        session.flush()
        return MessageView(row.id, conversation_id, "user", text, None, (), now)


def move(session: Session, conversation_id: str, expected: str | tuple[str, ...], state: str, now: datetime) -> bool:
    """The conversation's state, changed only from one of `expected`; False when another change came first."""
    allowed = (expected,) if isinstance(expected, str) else expected
    result = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.state.in_(allowed))
        .values(state=state, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def open_row(session: Session, conversation_id: str) -> Handoff | None:
    return session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(("waiting", "with_agent")))
        .order_by(Handoff.id.desc())
        .limit(1)
    ).first()


def served_row(session: Session, conversation_id: str) -> Handoff:
    if session.get(Conversation, conversation_id) is None:
        raise ConversationNotFound(conversation_id)
    row = open_row(session, conversation_id)
    if row is None or row.status != "with_agent":
        raise HandoffError("not_with_agent", "handoff.error.not_with_agent")
    return row


def assigned_row(session: Session, conversation_id: str, agent: str) -> Handoff:
    if session.get(Conversation, conversation_id) is None:
        raise ConversationNotFound(conversation_id)
    row = open_row(session, conversation_id)
    if row is None or row.status != "with_agent" or row.agent != agent:
        raise HandoffError("not_assigned", "handoff.error.not_assigned", status=403)
    return row


def channel_of(session: Session, conversation_id: str) -> str:
    return str(session.scalar(select(Conversation.channel).where(Conversation.id == conversation_id)) or "")


def latest_message_id(session: Session, conversation_id: str) -> int | None:
    return session.scalar(select(func.max(Message.id)).where(Message.conversation_id == conversation_id))

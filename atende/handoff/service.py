"""Conversation states bot → waiting → with_agent → closed, and everything agents and citizens do across them.

Every state change is a conditional UPDATE (`WHERE state = <expected>`), so the database decides races: of two
agents taking one conversation exactly one changes the row. The live state (queue order, locks, pub/sub) is
kept in step after each commit and can always be rebuilt from the database (`rebuild()`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from assistant.language import identify_language
from atende.handoff.assignment import AssignmentRules, Candidate, Need, Profile, Profiles, choose, loads
from atende.handoff.delivery import Delivery, DeliveryRefused, LiveDelivery, Outgoing, Survey
from atende.handoff.hours import BusinessHours
from atende.handoff.live import LiveState
from atende.handoff.models import Handoff, MessageAnnotation
from atende.handoff.sentiment import Sentiment, SentimentClassifier
from atende.handoff.summary import summarize
from atende.handoff.teams import TeamDirectory
from atende.handoff.topics import TopicRules
from atende.handoff.translation import (
    MessageTranslation,
    Translator,
    citizen_text,
    normalize_language,
    translate_or_none,
)
from atende.i18n import t
from atende.models import Conversation, Event, Message, isoformat, utcnow
from atende.store import ConversationNotFound, ConversationStore, MessageView

log = logging.getLogger(__name__)

QUEUE_TOPIC: Final = "queue"
CLOSE_REASONS: Final = (
    "resolved",
    "information_given",
    "protocol_opened",
    "citizen_left",
    "citizen_inactive",
    "wrong_team",
    "other",
)
DEFAULT_TEAM: Final = "atendimento"


_LIVE: Final = LiveDelivery()


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


class ServiceProtocols(Protocol):
    """Gives each closed service its protocol number (tools_mcp.contacts.ContactProtocols: the protocol book).

    Called inside the closing transaction, so a close that fails gives the number back and no protocol is left
    without its service.
    """

    def open_for(
        self,
        session: Session,
        conversation_id: str,
        summary: Mapping[str, Any],
        *,
        team: str,
        agent: str,
        reason_code: str,
    ) -> str: ...


class HandoffError(Exception):
    """A handoff operation that cannot happen now; `code` and the pt-BR `key` explain why."""

    def __init__(self, code: str, key: str, status: int = 409) -> None:
        super().__init__(code)
        self.code = code
        self.key = key
        self.status = status


@dataclass(frozen=True, slots=True)
class Ticket:
    """Where a handed-off conversation stands, as the citizen is told."""

    conversation_id: str
    team: str
    state: str
    position: int | None
    opens_at: datetime | None = None  # set when the team is closed now: nothing was queued
    estimated_wait_s: float | None = None  # position × the team's recent pace of assignments; None: no history


@dataclass(frozen=True, slots=True)
class Requested:
    """What one request changed inside its transaction; `HandoffService.announce` it after the commit.

    The place in the queue is counted in the database (handoffs of the team still waiting, by id), which is the
    order the live queue keeps, so a channel can tell the citizen in the same transaction.
    """

    conversation_id: str
    team: str
    source: str
    state: str
    order: int | None = None  # the new handoff's id when this request queued the conversation
    opens_at: datetime | None = None  # the team is closed now: nothing was queued
    position: int | None = None
    estimated_wait_s: float | None = None

    @property
    def queued(self) -> bool:
        return self.order is not None

    def ticket(self) -> Ticket:
        return Ticket(
            self.conversation_id,
            self.team,
            self.state,
            self.position,
            opens_at=self.opens_at,
            estimated_wait_s=self.estimated_wait_s,
        )


@dataclass(frozen=True, slots=True)
class HandoffView:
    id: int
    conversation_id: str
    team: str
    reason: str
    source: str
    status: str
    agent: str | None
    requested_at: datetime
    assigned_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    abandoned_at: datetime | None
    close_reason: str | None
    summary: dict[str, Any] | None
    survey_score: int | None
    survey_comment: str | None
    protocol_number: str | None = None  # the service's protocol, given when it closed

    def timings_s(self) -> dict[str, float | None]:
        """Wait, first response, handling and abandonment times, in seconds (None: not reached)."""

        def span(start: datetime | None, end: datetime | None) -> float | None:
            return None if start is None or end is None else round((end - start).total_seconds(), 3)

        return {
            "wait": span(self.requested_at, self.assigned_at),
            "first_response": span(self.assigned_at, self.first_response_at),
            "handling": span(self.assigned_at, self.closed_at),
            "abandonment": span(self.requested_at, self.abandoned_at),
        }


def _view(row: Handoff) -> HandoffView:
    return HandoffView(
        id=row.id,
        conversation_id=row.conversation_id,
        team=row.team,
        reason=row.reason,
        source=row.source,
        status=row.status,
        agent=row.agent,
        requested_at=row.requested_at,
        assigned_at=row.assigned_at,
        first_response_at=row.first_response_at,
        closed_at=row.closed_at,
        abandoned_at=row.abandoned_at,
        close_reason=row.close_reason,
        summary=dict(row.summary) if row.summary is not None else None,
        survey_score=row.survey_score,
        survey_comment=row.survey_comment,
        protocol_number=row.protocol_number,
    )


class HandoffService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: ConversationStore,
        live: LiveState,
        *,
        clock: Callable[[], datetime] = utcnow,
        default_team: str = DEFAULT_TEAM,
        lock_ttl_s: float = 30.0,
        locale: str = "pt-BR",
        hours: Mapping[str, BusinessHours] | None = None,
        sentiment: SentimentClassifier | None = None,
        translator: Translator | None = None,
        agent_language: str = "pt-BR",
        assignment: AssignmentRules | None = None,
        profiles: Profiles | None = None,
        presence_ttl_s: float = 60.0,
        topics: TopicRules | None = None,
        protocols: ServiceProtocols | None = None,
        teams: TeamDirectory | None = None,
    ) -> None:
        self._sessions = sessions
        self.store = store
        self.live = live
        self._clock = clock
        self.default_team = default_team
        self._lock_ttl_s = lock_ttl_s
        self._locale = locale
        self.hours = dict(hours or {})  # teams without an entry are always open
        self.sentiment = sentiment  # None: no sentiment trigger and no trend
        self.translator = translator  # None: languages are still detected, nothing is translated
        self.agent_language = agent_language  # what agents read and write unless a caller names theirs
        self.assignment = assignment or AssignmentRules()
        self.profiles = profiles or Profiles(
            default_team=default_team, default_capacity=3, default_languages=(agent_language,)
        )
        self.presence_ttl_s = presence_ttl_s  # an agent whose console stops beating for this long is offline
        self.topics = topics or TopicRules()  # articles and tools whose cases a person must handle
        # None (bare wiring): a closed service gets no protocol number, and the citizen is not given one.
        self.protocols = protocols
        # None (bare wiring): any queue name is accepted; build_services wires the setors' directory.
        self.teams = teams
        # How agents' messages and the survey reach citizens of each channel; unlisted channels read the
        # conversation live (the web chat).
        self.deliveries: dict[str, Delivery] = {}

    def now(self) -> datetime:
        return self._clock()

    # --- citizen side -------------------------------------------------------------------------------------

    def request(
        self, conversation_id: str, *, reason: str, source: str, team: str | None = None, skill: str | None = None
    ) -> Ticket:
        """Queue the conversation for a person; asking again while queued or served changes nothing.

        The queue is ordered by the handoff row's id: unique and increasing, so requests in the same clock tick
        still keep their order, and a rebuild after a restart reproduces it exactly. A team the citizen names
        must exist (`unknown_team`); those that come from the settings (topic rules) are trusted.
        """
        if team is not None and source == "citizen_request":
            self.require_team(team)
        with self._sessions.begin() as session:
            requested = self.request_in(session, conversation_id, reason=reason, source=source, team=team, skill=skill)
        self.announce(requested)
        if requested.opens_at is not None:
            return requested.ticket()
        return self.ticket(conversation_id)

    def request_in(
        self,
        session: Session,
        conversation_id: str,
        *,
        reason: str,
        source: str,
        team: str | None = None,
        skill: str | None = None,
    ) -> Requested:
        """`request` inside the caller's transaction (a channel that commits the handoff with the bot's turn and
        the citizen's notice); the caller must `announce` the result once committed.

        Without a team, or with the default one, the conversation's channel may name its own (a WhatsApp
        number's team). Outside the team's hours nothing is queued; the citizen is told when it opens.
        """
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        team = self._team(session, conversation.channel, conversation_id, team)
        now = self._clock()
        schedule = self.hours.get(team)
        if schedule is not None and not schedule.is_open(now):
            opens_at = schedule.next_opening(now)
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_after_hours",
                    payload={
                        "team": team,
                        "reason": reason[:500],
                        "opens_at": opens_at.isoformat() if opens_at else None,
                    },
                    created_at=now,
                )
            )
            return Requested(conversation_id, team, source, conversation.state, opens_at=opens_at)
        if not self._move(session, conversation_id, ("bot", "closed"), "waiting", now):
            return Requested(conversation_id, team, source, conversation.state)
        overflowed_from = None
        target = self.assignment.overflow.get(team)
        if target and target != team and not self._has_room(session, team) and self._has_room(session, target):
            overflowed_from, team = team, target
        row = Handoff(
            conversation_id=conversation_id,
            team=team,
            reason=reason[:500],
            source=source,
            status="waiting",
            requested_at=now,
            skill=skill,
            language=conversation.language,
            overflowed_from=overflowed_from,
        )
        session.add(row)
        session.flush()
        payload = {"team": team, "reason": reason[:500], "source": source}
        if overflowed_from is not None:
            payload["overflowed_from"] = overflowed_from
        session.add(Event(conversation_id=conversation_id, kind="handoff_queued", payload=payload, created_at=now))
        position = int(
            session.scalar(
                select(func.count())
                .select_from(Handoff)
                .where(Handoff.team == team, Handoff.status == "waiting", Handoff.id <= row.id)
            )
            or 1
        )
        pace = self._pace(team, session)
        return Requested(
            conversation_id,
            team,
            source,
            "waiting",
            order=row.id,
            position=position,
            estimated_wait_s=None if pace is None else round(pace * position, 1),
        )

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for callers that join a handoff step to their own transaction."""
        return self._sessions

    def announce(self, requested: Requested | None) -> None:
        """Bring the live queue in step with a committed request (`request_in`); nothing when it queued nothing."""
        if requested is None or requested.order is None:
            return
        self.live.enqueue(requested.team, requested.conversation_id, requested.order)
        self.live.publish(
            QUEUE_TOPIC, {"event": "queued", "conversation_id": requested.conversation_id, "team": requested.team}
        )
        log.info("conversation %s queued for team %s (%s)", requested.conversation_id, requested.team, requested.source)
        self.route([requested.team])

    def require_team(self, team: str) -> None:
        """Refuse a queue no setor serves: a conversation sent there would wait for nobody."""
        if self.teams is not None and not self.teams.exists(team):
            log.info("handoff to unknown team %r refused", team[:64])
            raise HandoffError("unknown_team", "handoff.error.unknown_team", status=422)

    def enqueue(self, conversation_id: str, *, team: str, reason: str) -> int | None:
        """The MCP tool `handoff_to_human`'s queue (tools_mcp.handoff.HandoffQueue)."""
        return self.request(conversation_id, reason=reason, source="tool", team=team).position

    def register_delivery(self, channel: str, delivery: Delivery) -> None:
        """How the channel named `channel` (a conversation's `channel`) carries agents' messages to its citizens."""
        self.deliveries[channel] = delivery

    def delivery(self, channel: str) -> Delivery:
        return self.deliveries.get(channel) or _LIVE

    def _team(self, session: Session, channel: str, conversation_id: str, team: str | None) -> str:
        """The team named, unless it is only the default: then the channel's own team (e.g. the WhatsApp number's)."""
        if team and team != self.default_team:
            return team
        return self.delivery(channel).team(session, conversation_id) or self.default_team

    def ticket(self, conversation_id: str) -> Ticket:
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        current = self.current(conversation_id)
        team = current.team if current is not None else self.default_team
        position = self.live.position(team, conversation_id) if conversation.state == "waiting" else None
        estimate = None if position is None else self._pace(team)
        return Ticket(
            conversation_id,
            team,
            conversation.state,
            position,
            estimated_wait_s=None if estimate is None or position is None else round(estimate * position, 1),
        )

    def _pace(self, team: str, session: Session | None = None, window: int = 20) -> float | None:
        """Mean seconds between the team's recent assignments: how fast its queue moves now."""
        stmt = (
            select(Handoff.assigned_at)
            .where(Handoff.team == team, Handoff.assigned_at.is_not(None))
            .order_by(Handoff.assigned_at.desc())
            .limit(window + 1)
        )
        if session is None:
            with self._sessions() as own:
                taken = list(own.scalars(stmt))
        else:
            taken = list(session.scalars(stmt))
        moments = [moment for moment in taken if moment is not None]
        if len(moments) < 2:
            return None
        return (moments[0] - moments[-1]).total_seconds() / (len(moments) - 1)

    def citizen_message(self, conversation_id: str, text: str) -> MessageView:
        """A citizen's message while waiting for or talking to a person: stored and pushed, never to the bot."""
        message = self.store.add_message(conversation_id, "user", text)
        self._push(conversation_id, "message", message)
        return message

    def citizen_message_in(self, session: Session, conversation_id: str, text: str) -> MessageView:
        """`citizen_message` inside the caller's transaction; `push` the returned message once committed."""
        now = self._clock()
        row = Message(conversation_id=conversation_id, role="user", text=text, citations=[], created_at=now)
        session.add(row)
        session.flush()
        return MessageView(row.id, conversation_id, "user", text, None, (), now)

    # --- sentiment ------------------------------------------------------------------------------------------

    def annotate(self, message_id: int, text: str) -> Sentiment | None:
        """Classify a stored citizen message once and keep the result (the trigger and the console read it)."""
        with self._sessions.begin() as session:
            return self.annotate_in(session, message_id, text)

    def annotate_in(self, session: Session, message_id: int, text: str) -> Sentiment | None:
        """`annotate` inside the caller's transaction; an already annotated message keeps its first result."""
        if self.sentiment is None:
            return None
        existing = session.get(MessageAnnotation, message_id)
        if existing is not None and existing.sentiment is not None:
            return Sentiment.stored(existing.sentiment, existing.sentiment_score, existing.sentiment_strong)
        found = self.sentiment.classify(text)
        row = self._annotation(session, message_id)  # may already hold the message's language and translation
        row.sentiment = found.label
        row.sentiment_score = found.score
        row.sentiment_strong = found.strong
        session.flush()
        return found

    def sentiments(self, conversation_id: str) -> dict[int, Sentiment]:
        """The classified citizen messages of a conversation, by message id."""
        with self._sessions() as session:
            rows = session.execute(
                select(
                    MessageAnnotation.message_id,
                    MessageAnnotation.sentiment,
                    MessageAnnotation.sentiment_score,
                    MessageAnnotation.sentiment_strong,
                )
                .join(Message, Message.id == MessageAnnotation.message_id)
                .where(Message.conversation_id == conversation_id, MessageAnnotation.sentiment.is_not(None))
            ).all()
        return {mid: Sentiment.stored(label or "neutral", score, strong) for mid, label, score, strong in rows}

    # --- translation (docs/decisions/0032-handoff-translation.md) ------------------------------------------

    def _language_of(self, session: Session, agent: str) -> str:
        """The language an agent reads and writes: the first of their profile's (the default profile: the setting)."""
        languages = self.profiles.get(session, agent).languages
        return languages[0] if languages else self.agent_language

    def _reader_language(self, session: Session, conversation_id: str) -> str:
        """Whoever serves the conversation reads it; while it waits, the agents' default language."""
        row = self._open_row(session, conversation_id)
        if row is not None and row.status == "with_agent" and row.agent:
            return self._language_of(session, row.agent)
        return self.agent_language

    def translate_incoming(self, message: MessageView, *, agent_language: str | None = None) -> MessageTranslation:
        """Read a committed citizen message in the agent's language: its language is detected (a message too short
        to tell is taken to be in the conversation's) and, when it is not the agent's, its translation is stored.

        Call it after the message's transaction has committed: the model may take seconds, and no transaction is
        held open meanwhile. A failed translation leaves the message as written. `agent_language`: the reader's
        (the service's `agent_language` when not given).
        """
        cid = message.conversation_id
        detected = identify_language(message.text)
        with self._sessions() as session:
            known = session.scalar(select(Conversation.language).where(Conversation.id == cid))
            reader = agent_language or self._reader_language(session, cid)
        language = detected or normalize_language(known)
        target = normalize_language(reader)
        translation = self._translate(message.text, language, target)
        with self._sessions.begin() as session:
            if detected is not None and detected != known:  # the citizen's language, which replies are sent in
                session.execute(
                    update(Conversation)
                    .where(Conversation.id == cid)
                    .values(language=detected, updated_at=Conversation.updated_at)
                    .execution_options(synchronize_session=False)
                )
            row = self._annotation(session, message.id)
            row.language = language
            if translation is not None:
                row.translation, row.translation_language = translation, target
        if translation is None:
            return MessageTranslation(language)
        self.live.publish(conversation_topic(cid), {"event": "translated", "message_id": message.id})
        return MessageTranslation(language, translation, target)

    def translations(self, conversation_id: str) -> dict[int, MessageTranslation]:
        """The messages of a conversation whose language is known, with their translations, by message id."""
        with self._sessions() as session:
            rows = session.execute(
                select(
                    MessageAnnotation.message_id,
                    MessageAnnotation.language,
                    MessageAnnotation.translation,
                    MessageAnnotation.translation_language,
                )
                .join(Message, Message.id == MessageAnnotation.message_id)
                .where(Message.conversation_id == conversation_id, MessageAnnotation.language.is_not(None))
            ).all()
        return {mid: MessageTranslation(language, text, target) for mid, language, text, target in rows}

    def _translate(self, text: str, source: str | None, target: str | None) -> str | None:
        if self.translator is None or source is None or target is None or source == target:
            return None
        return translate_or_none(self.translator, text, source, target)

    def _annotation(self, session: Session, message_id: int) -> MessageAnnotation:
        row = session.get(MessageAnnotation, message_id)
        if row is None:
            row = MessageAnnotation(message_id=message_id, sentiment_strong=False, created_at=self._clock())
            session.add(row)
        return row

    def push(self, message: MessageView) -> None:
        """Show a committed message on the consoles that follow its conversation."""
        self._push(message.conversation_id, "message", message)

    def recent_messages(self, session: Session, conversation_id: str, limit: int = 6) -> list[MessageView]:
        """The latest messages, oldest first, as the caller's transaction sees them (its own included)."""
        rows = session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc()).limit(limit)
        ).all()
        return [
            MessageView(
                row.id,
                row.conversation_id,
                row.role,  # type: ignore[arg-type]
                row.text,
                row.decision,  # type: ignore[arg-type]
                tuple(row.citations),
                row.created_at,
            )
            for row in reversed(rows)
        ]

    def leave(self, conversation_id: str) -> None:
        """The citizen gives up while waiting: recorded as an abandonment, back to the bot."""
        if not self._abandon(conversation_id, None):
            raise HandoffError("not_waiting", "handoff.error.not_waiting")

    def _abandon(self, conversation_id: str, notice: str | None) -> bool:
        now = self._clock()
        with self._sessions.begin() as session:
            if not self._move(session, conversation_id, "waiting", "bot", now):
                return False
            row = self._open_row(session, conversation_id)
            team = self.default_team if row is None else row.team
            if row is not None:
                row.status = "abandoned"
                row.abandoned_at = now
            told = None if notice is None else self._notify_in(session, conversation_id, "wait_timeout", notice)
        self.live.remove(team, conversation_id)
        self.live.publish(QUEUE_TOPIC, {"event": "abandoned", "conversation_id": conversation_id, "team": team})
        if told is not None:
            self._push(conversation_id, "message", told)
        return True

    def survey(self, conversation_id: str, score: int, comment: str | None, *, handoff_id: int | None = None) -> None:
        """The citizen's rating of the conversation's latest closed service (or of `handoff_id`), once."""
        if not 1 <= score <= 5:
            raise HandoffError("invalid_score", "handoff.error.invalid_score", status=422)
        with self._sessions.begin() as session:
            stmt = select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.status == "closed")
            if handoff_id is not None:
                stmt = stmt.where(Handoff.id == handoff_id)
            row = session.scalars(stmt.order_by(Handoff.id.desc()).limit(1)).first()
            if row is None or row.survey_score is not None:
                raise HandoffError("no_survey", "handoff.error.no_survey")
            row.survey_score = score
            row.survey_comment = (comment or "").strip()[:2000] or None

    # --- agent side ---------------------------------------------------------------------------------------

    def claim(self, conversation_id: str, agent: str) -> HandoffView:
        """Take a waiting conversation; of concurrent claims exactly one succeeds, the others get `taken`.

        An agent already holding as many conversations as their capacity gets `at_capacity`.
        """
        return self._assign(conversation_id, agent, by=agent)

    def _assign(
        self, conversation_id: str, agent: str, *, by: str, check_capacity: bool = True, patient: bool = True
    ) -> HandoffView:
        # The agent's own lock makes "count their conversations, then add one" atomic across processes: without it
        # two routers could each see room for one more and overfill the agent.
        token = f"{conversation_id}:{uuid.uuid4().hex}"
        agent_key = f"agent:{agent}"
        if check_capacity and not self._acquire_patiently(agent_key, token, patient):
            raise HandoffError("agent_busy", "handoff.error.agent_busy")
        try:
            view = self._assign_locked(conversation_id, agent, by=by, check_capacity=check_capacity)
        finally:
            if check_capacity:
                self.live.release(agent_key, token)
        self.live.remove(view.team, conversation_id)
        self.live.publish(
            QUEUE_TOPIC, {"event": "assigned", "conversation_id": conversation_id, "agent": agent, "team": view.team}
        )
        self.live.publish(conversation_topic(conversation_id), {"event": "assigned", "agent": agent})
        return view

    def _acquire_patiently(self, key: str, owner: str, patient: bool) -> bool:
        """The lock, waiting up to ~1 s for an assignment in flight to finish (a router gives up at once instead)."""
        for _ in range(50 if patient else 1):
            if self.live.acquire(key, owner, self._lock_ttl_s):
                return True
            if patient:
                threading.Event().wait(0.02)
        return False

    def _assign_locked(self, conversation_id: str, agent: str, *, by: str, check_capacity: bool) -> HandoffView:
        if not self.live.acquire(conversation_id, agent, self._lock_ttl_s):
            raise HandoffError("taken", "handoff.error.taken")
        try:
            now = self._clock()
            with self._sessions.begin() as session:
                if session.get(Conversation, conversation_id) is None:
                    raise ConversationNotFound(conversation_id)
                if check_capacity:
                    load, _ = loads(session, [agent])[agent]
                    if load >= self.profiles.get(session, agent).capacity:
                        raise HandoffError("at_capacity", "handoff.error.at_capacity")
                if not self._move(session, conversation_id, "waiting", "with_agent", now):
                    raise HandoffError("taken", "handoff.error.taken")
                row = self._open_row(session, conversation_id)
                assert row is not None, "a waiting conversation always has an open handoff"
                row.status = "with_agent"
                row.agent = agent
                row.assigned_at = now
                payload = {"agent": agent, "team": row.team} | ({} if by == agent else {"by": by})
                session.add(
                    Event(conversation_id=conversation_id, kind="handoff_assigned", payload=payload, created_at=now)
                )
                session.flush()
                return _view(row)
        finally:
            self.live.release(conversation_id, agent)

    def reply(
        self,
        conversation_id: str,
        agent: str,
        text: str,
        *,
        override: bool = False,
        agent_language: str | None = None,
    ) -> MessageView:
        """The agent's message to the citizen (only the assigned agent may send).

        The conversation's channel delivers it in the same transaction (WhatsApp queues it in its outbox, keyed by
        the message id, so it is sent once); when the channel refuses (WhatsApp's 24-hour window has closed)
        nothing is stored and the agent is told why. `override`: a supervisor steps into a service another agent
        holds (recorded as an intervention; the agent's first-response time is theirs alone).

        A citizen whose language is not the agent's (`agent_language`, else the service's) gets the translation with
        the agent's words below it (`citizen_text`); the message keeps the agent's words and its annotation the
        translation. The model runs before the transaction opens; when it fails the agent's words go as written.
        """
        text = text.strip()
        if not text:
            raise HandoffError("empty_message", "error.empty_message", status=422)
        with self._sessions() as session:  # checked again below; this spares the model a message that is refused
            if override:
                self._served_row(session, conversation_id)
            else:
                self._assigned_row(session, conversation_id, agent)
            citizen = normalize_language(
                session.scalar(select(Conversation.language).where(Conversation.id == conversation_id))
            )
            writer = agent_language or self._language_of(session, agent)
        language = normalize_language(writer)
        translation = self._translate(text, language, citizen)
        now = self._clock()
        with self._sessions.begin() as session:
            if override:
                row = self._served_row(session, conversation_id)
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="supervisor_intervened",
                        payload={"supervisor": agent, "agent": row.agent},
                        created_at=now,
                    )
                )
            else:
                row = self._assigned_row(session, conversation_id, agent)
            if row.first_response_at is None and not override:
                row.first_response_at = now
            message = Message(conversation_id=conversation_id, role="agent", text=text, citations=[], created_at=now)
            session.add(message)
            session.flush()
            outgoing = text
            if translation is not None and citizen is not None:
                outgoing = citizen_text(text, translation, citizen)
                annotation = self._annotation(session, message.id)
                annotation.language, annotation.translation = language, translation
                annotation.translation_language = citizen
            try:
                self.delivery(self._channel(session, conversation_id)).deliver(
                    session, conversation_id, Outgoing(f"agent:{message.id}", outgoing)
                )
            except DeliveryRefused as exc:
                log.info("agent reply in conversation %s not delivered: %s", conversation_id, exc.code)
                raise HandoffError(exc.code, exc.key) from exc
            sent = MessageView(message.id, conversation_id, "agent", text, None, (), now)
        self._push(conversation_id, "message", sent)
        return sent

    def note(self, conversation_id: str, agent: str, text: str) -> None:
        """An internal note: seen by staff only, never by the citizen."""
        text = text.strip()
        if not text:
            raise HandoffError("empty_message", "error.empty_message", status=422)
        self.store.add_event(conversation_id, "internal_note", {"agent": agent, "text": text[:4000]})
        self.live.publish(conversation_topic(conversation_id), {"event": "note", "agent": agent})

    def transfer(self, conversation_id: str, agent: str, team: str) -> Ticket:
        """Back to the queue, of another team; the summary travels with the conversation."""
        self.require_team(team)
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._assigned_row(session, conversation_id, agent)
            self._move(session, conversation_id, "with_agent", "waiting", now)
            row.status = "closed"
            row.closed_at = now
            row.close_reason = "transferred"
            requeued = Handoff(
                conversation_id=conversation_id,
                team=team,
                reason=row.reason,
                source="transfer",
                status="waiting",
                requested_at=now,
            )
            session.add(requeued)
            session.flush()
            order = requeued.id
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_transferred",
                    payload={"from_agent": agent, "from_team": row.team, "to_team": team},
                    created_at=now,
                )
            )
        self.live.enqueue(team, conversation_id, order)
        self.live.publish(QUEUE_TOPIC, {"event": "queued", "conversation_id": conversation_id, "team": team})
        self.route({team, *self.profile(agent).teams})
        return self.ticket(conversation_id)

    def close(self, conversation_id: str, agent: str, reason_code: str, *, override: bool = False) -> HandoffView:
        """End the service: the summary is stored, the citizen gets a closing message and the survey.

        `override`: `agent` is a supervisor (or the inactivity sweep) closing a service someone else holds.
        """
        if reason_code not in CLOSE_REASONS:
            raise HandoffError("invalid_reason", "handoff.error.invalid_reason", status=422)
        summary = summarize(self.store.list_messages(conversation_id))
        now = self._clock()
        with self._sessions.begin() as session:
            row = (
                self._served_row(session, conversation_id)
                if override
                else self._assigned_row(session, conversation_id, agent)
            )
            self._move(session, conversation_id, "with_agent", "closed", now)
            row.status = "closed"
            row.closed_at = now
            row.close_reason = reason_code
            row.summary = summary
            if self.protocols is not None:
                row.protocol_number = self.protocols.open_for(
                    session, conversation_id, summary, team=row.team, agent=agent, reason_code=reason_code
                )
            reference = row.protocol_number
            if reference is None:
                closing = t("handoff.closed_unnumbered", self._locale)
            else:
                closing = t("handoff.closed", self._locale, reference=reference)
            session.add(
                Message(conversation_id=conversation_id, role="system", text=closing, citations=[], created_at=now)
            )
            try:
                self.delivery(self._channel(session, conversation_id)).deliver(
                    session, conversation_id, Outgoing(f"close:{row.id}", closing, Survey(row.id, reference))
                )
            except DeliveryRefused as exc:
                # Closing never waits on the channel: the service ends; the citizen was not told (staff see why).
                log.warning("closing message of conversation %s not delivered: %s", conversation_id, exc.code)
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="handoff_close_not_delivered",
                        payload={"code": exc.code},
                        created_at=now,
                    )
                )
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_closed",
                    payload={"agent": agent, "reason": reason_code, "protocol_number": row.protocol_number},
                    created_at=now,
                )
            )
            session.flush()
            view = _view(row)
        self.live.publish(conversation_topic(conversation_id), {"event": "closed", "reason": reason_code})
        self.live.publish(QUEUE_TOPIC, {"event": "closed", "conversation_id": conversation_id, "team": view.team})
        if view.agent:  # the agent has room again: least-busy teams may give them the next conversation
            self.route(self.profile(view.agent).teams)
        return view

    # --- presence and routing -----------------------------------------------------------------------------

    def set_presence(self, agent: str, status: str) -> list[tuple[str, str]]:
        """The agent's availability (online, paused, offline), kept while their console keeps beating; coming online
        in a least-busy team may bring conversations at once (returned as (conversation, agent) pairs)."""
        self.live.set_presence(agent, status, self.presence_ttl_s)
        self.live.publish(QUEUE_TOPIC, {"event": "presence", "agent": agent, "status": status})
        if status != "online":
            return []
        with self._sessions() as session:
            teams = self.profiles.get(session, agent).teams
        return self.route(teams)

    def profile(self, agent: str) -> Profile:
        with self._sessions() as session:
            return self.profiles.get(session, agent)

    def save_profile(self, profile: Profile) -> Profile:
        with self._sessions.begin() as session:
            saved = self.profiles.save(session, profile, self._clock())
        self.route(profile.teams)
        return saved

    def candidates(self, session: Session) -> list[Candidate]:
        """Agents online now (paused and offline ones take nothing), with their profiles and current load.

        With the setors' directory wired, a profile's queues are cut to those of the agent's setor: routing never
        gives an agent a conversation the console would not let them claim (docs/decisions/0036-console-access.md).
        """
        online = [agent for agent, status in self.live.presence().items() if status == "online"]
        profiles = self.profiles.many(session, online)
        if self.teams is not None:
            allowed = self.teams.queues_of_staff(session, online)
            profiles = {
                agent: replace(profile, teams=tuple(team for team in profile.teams if team in allowed[agent]))
                for agent, profile in profiles.items()
            }
        counted = loads(session, online)
        return [Candidate(profiles[agent], *counted[agent]) for agent in online]

    def _has_room(self, session: Session, team: str) -> bool:
        return choose(self.candidates(session), Need(team)) is not None

    def route(self, teams: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Give waiting conversations of least-busy teams to available agents, first come first served.

        Safe to run in several processes at once: each assignment is the same locked, conditional change as a
        claim, so a conversation two routers pick goes to one agent and the other router moves on.
        """
        names = list(teams) if teams is not None else self.live.teams()
        assigned: list[tuple[str, str]] = []
        for team in names:
            if self.assignment.mode_of(team) != "least_busy":
                continue
            order = self.live.queue(team)
            if not order:
                continue
            with self._sessions() as session:
                pool = {c.profile.subject: c for c in self.candidates(session)}
                needs = {
                    row.conversation_id: Need(team, row.skill, row.language)
                    for row in session.scalars(
                        select(Handoff).where(Handoff.status == "waiting", Handoff.conversation_id.in_(order))
                    )
                }
            for conversation_id in order:
                if conversation_id not in needs:
                    continue
                agent = self._route_one(conversation_id, needs[conversation_id], pool)
                if agent is not None:
                    assigned.append((conversation_id, agent))
                    log.info("conversation %s routed to %s (team %s)", conversation_id, agent, team)
        return assigned

    def _route_one(self, conversation_id: str, need: Need, pool: dict[str, Candidate]) -> str | None:
        """Assign one conversation from `pool` (updated in place); an agent another process is assigning to, or
        who filled up meanwhile, leaves this pass's pool and the next best one is tried."""
        while (pick := choose(pool.values(), need)) is not None:
            agent = pick.profile.subject
            try:
                self._assign(conversation_id, agent, by="router", patient=False)
            except HandoffError as exc:
                if exc.code not in ("agent_busy", "at_capacity"):
                    return None  # taken by another process
                del pool[agent]
                continue
            pool[agent] = Candidate(pick.profile, pick.load + 1, self._clock())
            return agent
        return None

    def overflow(self) -> list[tuple[str, str]]:
        """Move waiting conversations from a team with nobody available to its overflow team, when that one has
        someone; returns (conversation, new team) pairs."""
        moved: list[tuple[str, str]] = []
        for team in self.live.teams():
            target = self.assignment.overflow.get(team)
            if not target or target == team:
                continue
            now = self._clock()
            with self._sessions.begin() as session:
                if self._has_room(session, team) or not self._has_room(session, target):
                    continue
                rows = session.scalars(
                    select(Handoff).where(Handoff.team == team, Handoff.status == "waiting").order_by(Handoff.id)
                ).all()
                for row in rows:
                    row.overflowed_from = team
                    row.team = target
                    session.add(
                        Event(
                            conversation_id=row.conversation_id,
                            kind="handoff_overflowed",
                            payload={"from_team": team, "to_team": target},
                            created_at=now,
                        )
                    )
                entries = [(row.conversation_id, row.id) for row in rows]
            for conversation_id, order in entries:
                self.live.remove(team, conversation_id)
                self.live.enqueue(target, conversation_id, order)
                self.live.publish(QUEUE_TOPIC, {"event": "queued", "conversation_id": conversation_id, "team": target})
                moved.append((conversation_id, target))
        if moved:
            self.route({team for _, team in moved})
        return moved

    # --- inactivity (atende.handoff.timeouts) -------------------------------------------------------------

    def session(self) -> Session:
        """A read-only session for the inactivity sweep's snapshot."""
        return self._sessions()

    def waiting_since(self, before: datetime) -> list[str]:
        """Conversations that have waited for a person since before `before`."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Handoff.conversation_id)
                    .where(Handoff.status == "waiting", Handoff.requested_at <= before)
                    .order_by(Handoff.id)
                )
            )

    def expire_wait(self, conversation_id: str) -> bool:
        """Nobody took the conversation in time: the citizen is offered a protocol and it goes back to the bot."""
        return self._abandon(conversation_id, t("handoff.timeout.waiting", self._locale))

    def requeue_idle(self, conversation_id: str, handoff_id: int, agent: str, latest_id: int | None) -> bool:
        """The agent left the citizen unanswered: the agent is paused and the conversation returns to the front of
        its queue (its handoff keeps its place); False when anything was said since the sweep looked."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "with_agent" or row.agent != agent:
                return False
            if self._latest_message_id(session, conversation_id) != latest_id:
                return False
            if not self._move(session, conversation_id, "with_agent", "waiting", now):
                return False
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_agent_timeout",
                    payload={"agent": agent, "team": row.team, "assigned_at": isoformat(row.assigned_at)},
                    created_at=now,
                )
            )
            row.status, row.agent, row.assigned_at, row.first_response_at = "waiting", None, None, None
            team = row.team
            told = self._notify_in(
                session,
                conversation_id,
                f"agent_timeout:{handoff_id}:{latest_id}",
                t("handoff.timeout.agent", self._locale),
            )
        self.live.set_presence(agent, "paused", self.presence_ttl_s)
        self.live.publish(QUEUE_TOPIC, {"event": "presence", "agent": agent, "status": "paused"})
        self.live.enqueue(team, conversation_id, handoff_id)
        self.live.publish(QUEUE_TOPIC, {"event": "queued", "conversation_id": conversation_id, "team": team})
        self.live.publish(conversation_topic(conversation_id), {"event": "requeued", "agent": agent})
        self._push(conversation_id, "message", told)
        log.info("conversation %s back to team %s: agent %s did not answer in time", conversation_id, team, agent)
        return True

    def warn_idle_citizen(self, conversation_id: str, handoff_id: int, latest_id: int | None, grace_s: float) -> bool:
        """Ask a silent citizen whether they are still there (once per silence)."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "with_agent":
                return False
            if self._latest_message_id(session, conversation_id) != latest_id:
                return False
            text = t("handoff.timeout.citizen_warning", self._locale, minutes=max(1, round(grace_s / 60)))
            told = self._notify_in(session, conversation_id, f"idle_warning:{handoff_id}:{latest_id}", text)
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="citizen_idle_warned",
                    payload={"handoff_id": handoff_id, "message_id": told.id},
                    created_at=now,
                )
            )
        self._push(conversation_id, "message", told)
        return True

    def close_idle(self, conversation_id: str, handoff_id: int, latest_id: int | None) -> bool:
        """The citizen stayed silent after the warning: the service closes as `citizen_inactive`."""
        with self._sessions() as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "with_agent":
                return False
            if self._latest_message_id(session, conversation_id) != latest_id:
                return False
        try:
            self.close(conversation_id, "system", "citizen_inactive", override=True)
        except HandoffError:
            return False
        return True

    def _notify_in(self, session: Session, conversation_id: str, key: str, text: str) -> MessageView:
        """A system message to the citizen, stored and handed to their channel (never lost when it refuses)."""
        now = self._clock()
        message = Message(conversation_id=conversation_id, role="system", text=text, citations=[], created_at=now)
        session.add(message)
        session.flush()
        try:
            self.delivery(self._channel(session, conversation_id)).deliver(
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

    @staticmethod
    def _latest_message_id(session: Session, conversation_id: str) -> int | None:
        return session.scalar(select(func.max(Message.id)).where(Message.conversation_id == conversation_id))

    # --- supervisor ---------------------------------------------------------------------------------------

    def reassign(self, conversation_id: str, supervisor: str, to_agent: str) -> HandoffView:
        """A supervisor gives a waiting or served conversation to an agent (to themselves: taking it over).

        Capacity does not bind a supervisor's decision; the previous agent sees it leave their list.
        """
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        if conversation.state == "waiting":
            return self._assign(conversation_id, to_agent, by=supervisor, check_capacity=False)
        now = self._clock()
        with self._sessions.begin() as session:
            row = self._served_row(session, conversation_id)
            previous = row.agent
            if previous != to_agent:
                row.agent = to_agent
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="handoff_reassigned",
                        payload={"from_agent": previous, "to_agent": to_agent, "by": supervisor},
                        created_at=now,
                    )
                )
            session.flush()
            view = _view(row)
        if previous != to_agent:
            update_ = {
                "event": "reassigned",
                "conversation_id": conversation_id,
                "agent": to_agent,
                "from": previous,
                "team": view.team,
            }
            self.live.publish(QUEUE_TOPIC, update_)
            self.live.publish(conversation_topic(conversation_id), update_)
        return view

    def served(self) -> list[HandoffView]:
        """Every conversation with an agent now (the supervisor's board)."""
        with self._sessions() as session:
            rows = session.scalars(select(Handoff).where(Handoff.status == "with_agent").order_by(Handoff.id))
            return [_view(row) for row in rows]

    # --- reading ------------------------------------------------------------------------------------------

    def get(self, handoff_id: int) -> HandoffView | None:
        with self._sessions() as session:
            row = session.get(Handoff, handoff_id)
            return None if row is None else _view(row)

    def current(self, conversation_id: str) -> HandoffView | None:
        """The conversation's latest handoff, open or not."""
        with self._sessions() as session:
            row = session.scalars(
                select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id.desc()).limit(1)
            ).first()
            return None if row is None else _view(row)

    def history(self, conversation_id: str) -> list[HandoffView]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id)
            )
            return [_view(row) for row in rows]

    def waiting(self, team: str | None = None) -> list[tuple[HandoffView, int]]:
        """Waiting conversations with their queue positions, team by team, first served first."""
        teams = [team] if team is not None else self.live.teams()
        order = [(name, cid) for name in teams for cid in self.live.queue(name)]
        if not order:
            return []
        with self._sessions() as session:
            rows = {
                row.conversation_id: _view(row)
                for row in session.scalars(
                    select(Handoff).where(
                        Handoff.status == "waiting", Handoff.conversation_id.in_([cid for _, cid in order])
                    )
                )
            }
        out: list[tuple[HandoffView, int]] = []
        positions: dict[str, int] = {}
        for name, cid in order:
            if cid in rows:
                positions[name] = positions.get(name, 0) + 1
                out.append((rows[cid], positions[name]))
        return out

    def assigned_to(self, agent: str) -> list[HandoffView]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Handoff).where(Handoff.agent == agent, Handoff.status == "with_agent").order_by(Handoff.id)
            )
            return [_view(row) for row in rows]

    def since(self, start: datetime) -> list[HandoffView]:
        """Handoffs requested at or after `start` (the supervisor's "today")."""
        with self._sessions() as session:
            rows = session.scalars(select(Handoff).where(Handoff.requested_at >= start).order_by(Handoff.id))
            return [_view(row) for row in rows]

    def rebuild(self) -> int:
        """Put every waiting conversation back in its team's queue (after a restart or a Redis flush)."""
        with self._sessions() as session:
            rows: Sequence[Handoff] = session.scalars(
                select(Handoff).where(Handoff.status == "waiting").order_by(Handoff.id)
            ).all()
            entries = [(row.team, row.conversation_id, float(row.id)) for row in rows]
        for team, cid, score in entries:
            self.live.enqueue(team, cid, score)
        return len(entries)

    # --- helpers ------------------------------------------------------------------------------------------

    @staticmethod
    def _move(
        session: Session, conversation_id: str, expected: str | tuple[str, ...], state: str, now: datetime
    ) -> bool:
        allowed = (expected,) if isinstance(expected, str) else expected
        result = session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, Conversation.state.in_(allowed))
            .values(state=state, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    @staticmethod
    def _open_row(session: Session, conversation_id: str) -> Handoff | None:
        return session.scalars(
            select(Handoff)
            .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(("waiting", "with_agent")))
            .order_by(Handoff.id.desc())
            .limit(1)
        ).first()

    @staticmethod
    def _channel(session: Session, conversation_id: str) -> str:
        return str(session.scalar(select(Conversation.channel).where(Conversation.id == conversation_id)) or "")

    def _served_row(self, session: Session, conversation_id: str) -> Handoff:
        if session.get(Conversation, conversation_id) is None:
            raise ConversationNotFound(conversation_id)
        row = self._open_row(session, conversation_id)
        if row is None or row.status != "with_agent":
            raise HandoffError("not_with_agent", "handoff.error.not_with_agent")
        return row

    def _assigned_row(self, session: Session, conversation_id: str, agent: str) -> Handoff:
        if session.get(Conversation, conversation_id) is None:
            raise ConversationNotFound(conversation_id)
        row = self._open_row(session, conversation_id)
        if row is None or row.status != "with_agent" or row.agent != agent:
            raise HandoffError("not_assigned", "handoff.error.not_assigned", status=403)
        return row

    def _push(self, conversation_id: str, event: str, message: MessageView) -> None:
        self.live.publish(
            conversation_topic(conversation_id),
            {
                "event": event,
                # Ids only: a console reads the text through the checked, masked conversation endpoint.
                "message": {"id": message.id, "role": message.role, "created_at": message.created_at.isoformat()},
            },
        )

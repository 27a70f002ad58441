"""The conversation repository the app talks to.

Methods take and return plain frozen dataclasses, never ORM objects, so no caller ever holds
something tied to a session. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast, get_args

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from core.conversation_keys import same_digest
from core.models import (
    Conversation,
    ConversationState,
    Decision,
    Event,
    Message,
    Role,
    Turn,
    utcnow,
)

__all__ = [
    "HANDED_OFF",
    "ConversationNotFound",
    "ConversationState",
    "ConversationStore",
    "ConversationView",
    "Decision",
    "EventDraft",
    "EventView",
    "ExchangeDraft",
    "MessageDraft",
    "MessageView",
    "RecordedExchange",
    "Role",
    "TurnRecord",
]

ROLES: Final = frozenset(get_args(Role))
DECISIONS: Final = frozenset(get_args(Decision))
# A conversation in these states is a person's: the citizen's messages go to the agent, not the bot.
HANDED_OFF: Final = frozenset({"waiting", "with_agent"})
TURN_FIELDS: Final = tuple(column.name for column in Turn.__table__.columns)


class ConversationNotFound(LookupError):
    """No conversation has this id."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(conversation_id)
        self.conversation_id = conversation_id

    def __str__(self) -> str:
        return f"conversation not found: {self.conversation_id}"


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: str
    channel: str
    state: ConversationState
    language: str
    citizen_ref: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageView:
    id: int
    conversation_id: str
    role: Role
    text: str
    decision: Decision | None
    citations: tuple[dict[str, Any], ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    conversation_id: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """The assistant's reply as it should be stored in the conversation record."""

    text: str
    decision: Decision | None = None
    citations: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class EventDraft:
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRecord:
    """One row of the turn log; the caller masks personal data in every text field first."""

    conversation_id: str
    channel: str
    user_text: str
    rewritten_query: str
    prompt_version: str
    model_id: str
    answer: str
    decision: Decision
    latency_total_ms: float
    retrieved: Sequence[Mapping[str, Any]] = ()  # {"chunk_id", "doc_id", "score"}
    citations: Sequence[Mapping[str, Any]] = ()  # {"doc_id", "title", "section", "url"}
    latency_retrieve_ms: float | None = None
    latency_first_token_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    tool_calls: Sequence[Mapping[str, Any]] = ()  # {"name", "arguments", "ok", "error"}, arguments masked
    created_at: datetime | None = None  # None: now


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeDraft:
    """A turn ready to be stored: the citizen's message as written (`turn.user_text` is its masked form), the
    reply, the turn-log row and any events."""

    turn: TurnRecord
    user_message: str
    reply: MessageDraft
    events: Sequence[EventDraft] = ()


@dataclass(frozen=True, slots=True)
class RecordedExchange:
    user_message: MessageView
    reply: MessageView
    turn_id: int


def _require(value: str | None, allowed: frozenset[str], what: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")


def _require_aware(value: datetime | None, what: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")


def _json_list(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(item) for item in items]


def _conversation_view(row: Conversation) -> ConversationView:
    return ConversationView(
        id=row.id,
        channel=row.channel,
        state=cast(ConversationState, row.state),
        language=row.language,
        citizen_ref=row.citizen_ref,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _message_view(row: Message) -> MessageView:
    return MessageView(
        id=row.id,
        conversation_id=row.conversation_id,
        role=cast(Role, row.role),
        text=row.text,
        decision=cast(Decision | None, row.decision),
        citations=tuple(row.citations),
        created_at=row.created_at,
    )


def _event_view(row: Event) -> EventView:
    return EventView(
        id=row.id,
        conversation_id=row.conversation_id,
        kind=row.kind,
        payload=dict(row.payload),
        created_at=row.created_at,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class ConversationStore:
    """Conversations, messages, the turn log and events, over any SQLAlchemy sessionmaker."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock  # one clock with the handoff service's, so tests can move time for both

    # Conversations

    def create_conversation(
        self,
        channel: str,
        language: str = "pt-BR",
        *,
        citizen_ref: str | None = None,
        web_key_hash: str | None = None,
    ) -> ConversationView:
        """`web_key_hash`: the digest of the web chat key of the browser that may use it (core.conversation_keys)."""
        with self._sessions.begin() as session:
            now = self._clock()
            row = Conversation(
                channel=channel,
                language=language,
                state="bot",
                citizen_ref=citizen_ref,
                web_key_hash=web_key_hash,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return _conversation_view(row)

    def get_conversation(self, conversation_id: str) -> ConversationView | None:
        with self._sessions() as session:
            row = session.get(Conversation, conversation_id)
            return None if row is None else _conversation_view(row)

    def get_web_conversation(self, conversation_id: str, web_key_hash: str) -> ConversationView | None:
        """The conversation only when it is bound to this web chat key digest (None as for an unknown id)."""
        with self._sessions() as session:
            row = session.get(Conversation, conversation_id)
            if row is None or not same_digest(row.web_key_hash, web_key_hash):
                return None
            return _conversation_view(row)

    # Messages

    def add_message(
        self,
        conversation_id: str,
        role: Role,
        text: str,
        decision: Decision | None = None,
        citations: Sequence[Mapping[str, Any]] = (),
    ) -> MessageView:
        with self._sessions.begin() as session:
            return self.add_message_in(session, conversation_id, role, text, decision, citations)

    def add_message_in(
        self,
        session: Session,
        conversation_id: str,
        role: Role,
        text: str,
        decision: Decision | None = None,
        citations: Sequence[Mapping[str, Any]] = (),
    ) -> MessageView:
        """`add_message` in the caller's transaction."""
        _require(role, ROLES, "role")
        _require(decision, DECISIONS, "decision")
        conversation = self._conversation(session, conversation_id)
        row = self._add_message(session, conversation, role, text, decision, citations, self._clock())
        return _message_view(row)

    def list_messages(self, conversation_id: str, limit: int | None = None) -> list[MessageView]:
        """Messages oldest first; with `limit`, only the latest `limit` of them."""
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        # Newest first so LIMIT keeps the recent end, then flipped back to reading order.
        stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._sessions() as session:
            views = [_message_view(row) for row in session.scalars(stmt)]
        views.reverse()
        return views

    # Turn log

    def record_exchange(self, exchange: ExchangeDraft) -> RecordedExchange:
        """Store the citizen's message, the reply, the turn and any events in one transaction of its own."""
        with self._sessions.begin() as session:
            return self.record_exchange_in(session, exchange)

    def record_exchange_in(self, session: Session, exchange: ExchangeDraft) -> RecordedExchange:
        """Store the exchange in the caller's transaction: either everything is written or nothing is.

        The conversation service commits the reply, the state change, a handoff and the channel's outbox rows
        with it, so a crash never leaves a turn without its reply or sends a reply twice.
        """
        turn, reply = exchange.turn, exchange.reply
        _require(turn.decision, DECISIONS, "decision")
        _require(reply.decision, DECISIONS, "decision")
        _require_aware(turn.created_at, "created_at")
        now = self._clock()
        conversation = self._conversation(session, turn.conversation_id)
        asked = self._add_message(session, conversation, "user", exchange.user_message, None, (), now)
        answered = self._add_message(
            session, conversation, "assistant", reply.text, reply.decision, reply.citations, now
        )
        turn_row = self._add_turn(session, turn, now)
        for draft in exchange.events:
            session.add(
                Event(conversation_id=conversation.id, kind=draft.kind, payload=dict(draft.payload), created_at=now)
            )
        session.flush()
        return RecordedExchange(user_message=_message_view(asked), reply=_message_view(answered), turn_id=turn_row.id)

    def iter_turns(
        self, since: datetime | None = None, until: datetime | None = None, *, batch_size: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Turn-log rows as JSON-ready dicts, oldest id first, with `since <= created_at < until`.

        Rows are streamed; the read stays open until the iterator is exhausted or closed.
        """
        _require_aware(since, "since")
        _require_aware(until, "until")
        stmt = select(Turn.__table__).order_by(Turn.id)
        if since is not None:
            stmt = stmt.where(Turn.created_at >= since)
        if until is not None:
            stmt = stmt.where(Turn.created_at < until)
        return self._stream_turns(stmt.execution_options(yield_per=batch_size))

    def _stream_turns(self, stmt: Executable) -> Iterator[dict[str, Any]]:
        with self._sessions() as session:
            for row in session.execute(stmt):
                yield {name: _jsonable(value) for name, value in row._mapping.items()}

    # Events

    def add_event(self, conversation_id: str, kind: str, payload: Mapping[str, Any]) -> None:
        with self._sessions.begin() as session:
            self.add_event_in(session, conversation_id, kind, payload)

    def add_event_in(self, session: Session, conversation_id: str, kind: str, payload: Mapping[str, Any]) -> None:
        """`add_event` in the caller's transaction."""
        self._conversation(session, conversation_id)
        session.add(Event(conversation_id=conversation_id, kind=kind, payload=dict(payload), created_at=self._clock()))

    def list_events(self, conversation_id: str) -> list[EventView]:
        stmt = select(Event).where(Event.conversation_id == conversation_id).order_by(Event.id)
        with self._sessions() as session:
            return [_event_view(row) for row in session.scalars(stmt)]

    # Health

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self._sessions() as session:
            session.execute(text("SELECT 1"))

    # Helpers shared inside one transaction

    @staticmethod
    def _conversation(session: Session, conversation_id: str) -> Conversation:
        row = session.get(Conversation, conversation_id)
        if row is None:
            raise ConversationNotFound(conversation_id)
        return row

    @staticmethod
    def _add_message(
        session: Session,
        conversation: Conversation,
        role: Role,
        text: str,
        decision: Decision | None,
        citations: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> Message:
        row = Message(
            conversation_id=conversation.id,
            role=role,
            text=text,
            decision=decision,
            citations=_json_list(citations),
            created_at=now,
        )
        session.add(row)
        # Touching the conversation row also serialises concurrent writers to one conversation
        # on PostgreSQL, so message ids follow the order the messages were committed in.
        conversation.updated_at = now
        # Flushed right away: the id is needed, and later failures must roll back real rows.
        session.flush()
        return row

    @staticmethod
    def _add_turn(session: Session, turn: TurnRecord, now: datetime) -> Turn:
        row = Turn(
            conversation_id=turn.conversation_id,
            channel=turn.channel,
            created_at=turn.created_at or now,
            user_text=turn.user_text,
            rewritten_query=turn.rewritten_query,
            retrieved=_json_list(turn.retrieved),
            prompt_version=turn.prompt_version,
            model_id=turn.model_id,
            answer=turn.answer,
            citations=_json_list(turn.citations),
            decision=turn.decision,
            latency_retrieve_ms=turn.latency_retrieve_ms,
            latency_first_token_ms=turn.latency_first_token_ms,
            latency_total_ms=turn.latency_total_ms,
            prompt_tokens=turn.prompt_tokens,
            completion_tokens=turn.completion_tokens,
            error=turn.error,
            tool_calls=_json_list(turn.tool_calls),
        )
        session.add(row)
        session.flush()
        return row

"""What the handoff hands out: its error, the citizen's ticket, a request's outcome, stored services as views, and
the reads of them (one service, a conversation's, an agent's, the day's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Message
from core.store import MessageView
from handoff.models import Handoff

QUEUE_TOPIC: Final = "queue"


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


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


def view(row: Handoff) -> HandoffView:
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


class Records:
    """Reads of stored handoffs and of the messages around them; nothing here changes a row."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, handoff_id: int) -> HandoffView | None:
        with self._sessions() as session:
            row = session.get(Handoff, handoff_id)
            return None if row is None else view(row)

    def current(self, conversation_id: str) -> HandoffView | None:
        """The conversation's latest handoff, open or not."""
        with self._sessions() as session:
            row = session.scalars(
                select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id.desc()).limit(1)
            ).first()
            return None if row is None else view(row)

    def history(self, conversation_id: str) -> list[HandoffView]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id)
            )
            return [view(row) for row in rows]

    def served(self) -> list[HandoffView]:
        """Every conversation with an agent now (the supervisor's board)."""
        with self._sessions() as session:
            rows = session.scalars(select(Handoff).where(Handoff.status == "with_agent").order_by(Handoff.id))
            return [view(row) for row in rows]

    def assigned_to(self, agent: str) -> list[HandoffView]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Handoff).where(Handoff.agent == agent, Handoff.status == "with_agent").order_by(Handoff.id)
            )
            return [view(row) for row in rows]

    def since(self, start: datetime) -> list[HandoffView]:
        """Handoffs requested at or after `start` (the supervisor's "today")."""
        with self._sessions() as session:
            rows = session.scalars(select(Handoff).where(Handoff.requested_at >= start).order_by(Handoff.id))
            return [view(row) for row in rows]

    @staticmethod
    def recent_messages(session: Session, conversation_id: str, limit: int = 6) -> list[MessageView]:
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

"""Handing a conversation to a person: the `HandoffQueue` boundary and a default that only records the request."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from core.models import Conversation, Event


class HandoffQueue(Protocol):
    def enqueue(self, conversation_id: str, *, team: str, reason: str) -> int | None:
        """Put the conversation in the team's queue; returns its position, or None when the queue cannot tell."""
        ...


class EventHandoffQueue:
    """Records a `handoff_requested` event on the conversation; the agents' queue (a later issue) reads those."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def enqueue(self, conversation_id: str, *, team: str, reason: str) -> int | None:
        with self._sessions.begin() as session:
            if session.get(Conversation, conversation_id) is not None:
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="handoff_requested",
                        payload={"team": team, "reason": reason, "source": "tool"},
                    )
                )
        return None

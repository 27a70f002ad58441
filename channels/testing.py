"""A test double for the `handoff.delivery.Delivery` port; it ships in the package so every test shares it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from sqlalchemy import event

from handoff.delivery import DeliveryRefused, Outgoing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, SessionTransaction

_PENDING: Final = "atende.scripted_delivery.pending"


class UnexpectedDelivery(AssertionError):
    """The code under test handed a channel a conversation the test never told it about."""


class KeyReused(Exception):
    """A message key handed over a second time: like the WhatsApp outbox, the fake fails the transaction."""


@dataclass
class ScriptedDelivery:
    """A channel that carries agents' messages to the conversations it was told about, and fails loudly otherwise.

    `expect(conversation_id, team=...)` declares a conversation (and the team its channel names for it);
    `refuse(conversation_id, ...)` makes every delivery to it raise `DeliveryRefused`. Like a real channel, a
    message reaches the citizen only when the caller's transaction commits, and a key is carried once: handing it
    over again raises `KeyReused`. `sent` holds (conversation id, message) in the order they reached citizens.
    """

    sent: list[tuple[str, Outgoing]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    _teams: dict[str, str | None] = field(default_factory=dict)
    _refusals: dict[str, DeliveryRefused] = field(default_factory=dict)

    # Scripting

    def expect(self, conversation_id: str, *, team: str | None = None) -> ScriptedDelivery:
        self._teams[conversation_id] = team
        return self

    def refuse(
        self, conversation_id: str, code: str = "outside_window", key: str = "handoff.error.outside_window"
    ) -> ScriptedDelivery:
        self._teams.setdefault(conversation_id, None)
        self._refusals[conversation_id] = DeliveryRefused(code, key)
        return self

    # Reading

    def texts(self, conversation_id: str) -> list[str]:
        """What the citizen of `conversation_id` received, in order."""
        return [message.text for cid, message in self.sent if cid == conversation_id]

    # The Delivery protocol

    def deliver(self, session: Session, conversation_id: str, message: Outgoing) -> None:
        self._check(conversation_id, f"deliver {message.key!r}")
        refusal = self._refusals.get(conversation_id)
        if refusal is not None:
            raise DeliveryRefused(refusal.code, refusal.key)
        if self._pending not in session.info:
            session.info[self._pending] = []
            event.listen(session, "after_commit", self._committed)
            event.listen(session, "after_soft_rollback", self._rolled_back)
        pending: list[tuple[str, Outgoing]] = session.info[self._pending]
        if message.key in {m.key for _, m in [*self.sent, *pending]}:
            raise KeyReused(message.key)
        pending.append((conversation_id, message))

    def team(self, session: Session, conversation_id: str) -> str | None:
        self._check(conversation_id, "team")
        return self._teams[conversation_id]

    # Inside

    def _check(self, conversation_id: str, what: str) -> None:
        if conversation_id not in self._teams:
            problem = f"{what} for conversation {conversation_id!r}, which the test never expected"
            self.unexpected.append(problem)
            raise UnexpectedDelivery(problem)

    @property
    def _pending(self) -> str:
        """The session.info key of this delivery's messages waiting for their transaction to commit."""
        return f"{_PENDING}:{id(self)}"

    def _committed(self, session: Session) -> None:
        self.sent.extend(session.info.get(self._pending, []))
        session.info[self._pending] = []

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        if previous.parent is None:  # the whole transaction, not a savepoint inside it
            session.info[self._pending] = []

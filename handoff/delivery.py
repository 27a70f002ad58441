"""The handoff's port to the channels: how a person's words reach a citizen, whatever the channel.

Each channel registers its `Delivery` with the handoff (`HandoffService.register_delivery`); the web chat's is
`LiveDelivery`, WhatsApp's queues the message in its outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class Survey:
    """The satisfaction survey (1–5) that ends a served conversation: which handoff it rates, and the service's
    protocol number (None: the service got none)."""

    handoff_id: int
    reference: str | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Words from a person (an agent, or the closing of the service) on their way to the citizen.

    `key` is unique per message: the channel uses it so that the same message is never sent twice.
    """

    key: str
    text: str
    survey: Survey | None = None


class DeliveryRefused(Exception):
    """The channel cannot take this message now (e.g. WhatsApp's 24-hour window is closed).

    `code` is stable for programs; `key` names the pt-BR explanation for the agent (core/locales).
    Raised before anything was written, so the caller's transaction can go on or roll back as it chooses.
    """

    def __init__(self, code: str, key: str) -> None:
        super().__init__(code)
        self.code = code
        self.key = key


@runtime_checkable
class Delivery(Protocol):
    """How a channel carries the human side of a handoff to its citizens (handoff/actions.py).

    `deliver` runs inside the transaction that stores the message, so the message and its delivery are committed
    together or not at all. `team` is the team that serves the channel's conversation when nobody named one
    (a WhatsApp business number's team), read in the caller's transaction too.
    """

    def deliver(self, session: Session, conversation_id: str, message: Outgoing) -> None: ...

    def team(self, session: Session, conversation_id: str) -> str | None: ...


class LiveDelivery:
    """The web chat's delivery: nothing to do. The message is in the conversation and on its live topic, which
    the chat reads; the survey is the chat's own form."""

    def deliver(self, session: Session, conversation_id: str, message: Outgoing) -> None:
        return None

    def team(self, session: Session, conversation_id: str) -> str | None:
        return None

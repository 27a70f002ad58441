"""The Channel boundary: every way a citizen reaches us plugs in through the same small registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.orm import Session


@runtime_checkable
class Channel(Protocol):
    """A citizen-facing channel: a name used in the turn log and the HTTP routes it adds to the app.

    Services reach the routes through the app's dependencies (atende.deps), not through the channel.
    """

    @property
    def name(self) -> str: ...

    def install(self, app: FastAPI) -> None: ...


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

    `code` is stable for programs; `key` names the pt-BR explanation for the agent (atende/locales).
    Raised before anything was written, so the caller's transaction can go on or roll back as it chooses.
    """

    def __init__(self, code: str, key: str) -> None:
        super().__init__(code)
        self.code = code
        self.key = key


@runtime_checkable
class Delivery(Protocol):
    """How a channel carries the human side of a handoff to its citizens (atende/handoff/service.py).

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


class ChannelRegistry:
    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        if channel.name in self._channels:
            raise ValueError(f"channel {channel.name!r} is already registered")
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel:
        return self._channels[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._channels.values())

    def names(self) -> list[str]:
        return sorted(self._channels)


def default_registry() -> ChannelRegistry:
    """The built-in channels, registered exactly as an extension would register its own."""
    from channels.webchat.channel import WebChatChannel
    from channels.whatsapp.channel import WhatsAppChannel

    registry = ChannelRegistry()
    registry.register(WebChatChannel())
    registry.register(WhatsAppChannel())
    return registry

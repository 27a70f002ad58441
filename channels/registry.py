"""The Channel boundary: every way a citizen reaches us plugs in through the same small registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

# How a channel carries people's words to its citizens is the handoff's port: handoff.delivery.

if TYPE_CHECKING:
    from fastapi import FastAPI


@runtime_checkable
class Channel(Protocol):
    """A citizen-facing channel: a name used in the turn log and the HTTP routes it adds to the app.

    The routes reach the app's services through their own dependencies (channels/webchat/deps.py), which name
    only what they read, not through the channel.
    """

    @property
    def name(self) -> str: ...

    def install(self, app: FastAPI) -> None: ...


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

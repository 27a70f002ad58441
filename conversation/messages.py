"""What enters the conversation layer from a channel, and what leaves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from assistant.routing import Route as AssistantRoute
from assistant.service import AssistantReply, Citation, Decision
from core.models import utcnow

# "channel": the channel answered by itself (a menu, an opt-out confirmation), with no assistant turn.
Route = AssistantRoute | Literal["channel"]


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file the citizen sent, as the channel stored it."""

    kind: str  # image | audio | document | video
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A citizen's message, whichever channel it came by.

    The adapter has already found the conversation (the web chat's URL, a WhatsApp contact's open conversation).
    `client_message_id` is the channel's own id for the message (the web chat's per-message id, a WhatsApp wamid):
    the same id sent again is answered once. `team`: the team the channel account serves, for a handoff.
    `people_only`: the account is served only by people (a WhatsApp number of the ombudsman): the bot never
    answers, and the first message asks for a person.
    """

    channel: str
    conversation_id: str
    text: str
    sender_ref: str | None = None
    client_message_id: str | None = None
    media: tuple[MediaRef, ...] = ()
    team: str | None = None
    people_only: bool = False
    received_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The reply to one inbound message, and how it came about.

    `reply` is the assistant's own reply: None when the message went to a person instead, or when a repeated
    message got the reply stored for it (`replayed`). `handoff_team` is the team whose queue the conversation is
    in (or would join, after hours) when the decision is a handoff. `announces`: a forwarded message's answer tells
    the citizen something new (the queue they joined, when the team opens), not only that the agent has it.
    """

    answer: str
    decision: Decision
    route: Route
    citations: tuple[Citation, ...] = ()
    message_id: int | None = None
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    handoff_team: str | None = None
    reply: AssistantReply | None = None
    replayed: bool = False
    announces: bool = False

    @property
    def forwarded(self) -> bool:
        """The conversation is a person's: the message went to the agent, the bot did not answer."""
        return self.route == "human" and self.reply is None and not self.replayed

    def stored(self) -> dict[str, Any]:
        """The form kept in the inbox, to answer a repeated message with."""
        return {
            "answer": self.answer,
            "decision": self.decision,
            "route": self.route,
            "citations": [c.as_dict() for c in self.citations],
            "message_id": self.message_id,
            "timings_ms": dict(self.timings_ms),
            "handoff_team": self.handoff_team,
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(
            answer=str(data["answer"]),
            decision=data["decision"],
            route=data["route"],
            citations=tuple(Citation(**{**c, "quotes": tuple(c.get("quotes", ()))}) for c in data.get("citations", ())),
            message_id=data.get("message_id"),
            timings_ms=dict(data.get("timings_ms") or {}),
            handoff_team=data.get("handoff_team"),
            replayed=True,
        )

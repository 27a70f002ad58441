"""Request and response bodies of the web chat API (they document the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from conversation.messages import Route
from core.errors import ErrorOut


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["web"] = "web"
    language: str = Field(default="pt-BR", max_length=16)


class ConversationCreated(BaseModel):
    id: str


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The length limit is enforced by the assistant (configurable), with a pt-BR error; this is a hard cap.
    text: str = Field(max_length=100_000, description="A mensagem do cidadão.")
    client_message_id: str | None = Field(
        default=None,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The browser's id for this message (a UUID): the same id sent again gets the first reply.",
    )


class CitationOut(BaseModel):
    n: int = Field(description="The [n] marker used in the answer.")
    doc_id: str
    title: str
    section: str = ""
    url: str


class ReplyOut(BaseModel):
    answer: str
    decision: Literal["answered", "abstained", "handoff"]
    route: Route
    citations: list[CitationOut]
    message_id: int | None = None
    timings_ms: dict[str, float] = {}


class MessageOut(BaseModel):
    role: str
    text: str
    decision: str | None = None
    citations: list[dict[str, object]] = []
    created_at: datetime


class ConversationOut(BaseModel):
    id: str
    state: str
    channel: str
    messages: list[MessageOut]


__all__ = [
    "CitationOut",
    "ConversationCreated",
    "ConversationOut",
    "ErrorOut",
    "MessageIn",
    "MessageOut",
    "NewConversation",
    "ReplyOut",
]

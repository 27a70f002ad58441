"""The handoff record: one row per time a conversation waits for a person, with the times analytics need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, UTCDateTime, utcnow


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    team: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(32))  # citizen_request, abstained_twice, tool, transfer
    # waiting → with_agent → closed; abandoned when the citizen leaves (or times out) before an agent took it.
    status: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    agent: Mapped[str | None] = mapped_column(String(255))  # the principal's subject, e.g. "user:7"
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    survey_score: Mapped[int | None] = mapped_column(Integer)
    survey_comment: Mapped[str | None] = mapped_column(Text)
    # The service's protocol (tools_mcp protocols, kind "contact"), given when it closed (migration 0012).
    protocol_number: Mapped[str | None] = mapped_column(String(16), index=True)
    skill: Mapped[str | None] = mapped_column(String(64))  # what the agent must know (a topic's rule); None: anyone
    language: Mapped[str | None] = mapped_column(String(16))  # the citizen's language, preferred in an agent
    overflowed_from: Mapped[str | None] = mapped_column(String(64))  # the team that had nobody available


class MessageAnnotation(Base):
    """Computed once per message: a citizen's sentiment (label and score), for the trigger and the console's trend;
    the language a citizen or agent wrote in and, when the other side reads another, the translation (migration 0011).
    """

    __tablename__ = "message_annotations"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    sentiment: Mapped[str | None] = mapped_column(String(16))  # negative, neutral, positive
    sentiment_score: Mapped[float | None] = mapped_column(Float)  # -1 (most negative) … 1
    sentiment_strong: Mapped[bool] = mapped_column(Boolean, default=False)  # as the classifier judged it
    language: Mapped[str | None] = mapped_column(String(16))  # the message's language (BCP-47); None: not known
    translation: Mapped[str | None] = mapped_column(Text)  # what the other side reads; None: not needed or failed
    translation_language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentProfile(Base):
    """How routing sees one agent; an agent without a row gets the defaults of the settings."""

    __tablename__ = "agent_profiles"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)  # the principal's subject, e.g. "user:7"
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)  # the queues the agent serves
    capacity: Mapped[int] = mapped_column(Integer, default=3)  # simultaneous conversations
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)  # BCP-47, e.g. ["pt-BR", "es"]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

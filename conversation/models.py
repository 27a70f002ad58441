"""The tables the conversation layer owns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, UTCDateTime, utcnow


class InboxRow(Base):
    """One item a channel received (a citizen's message, a delivery status, a change we do not process), as the
    channel sent it.

    (`channel`, `key`) is unique, so a redelivery or a retried send is an insert that does nothing. `reply` keeps
    what a synchronous channel (the web chat) answered, to answer a retried send with it again.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "key"),
        Index("ix_inbox_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # message | status | other
    channel: Mapped[str] = mapped_column(String(16))
    account: Mapped[str | None] = mapped_column(String(64))  # the channel's own account (a WhatsApp number id)
    conversation_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSON)

"""ORM tables of the LGPD area: the hash-chained audit log, the consent register, admin PII patterns and the
record of anonymised conversations. Revision 0005 creates them; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, UTCDateTime, utcnow

GENESIS_HASH = "0" * 64
CHAIN_HEAD_ID = 1


class AuditEntry(Base):
    """One audit record; `hash` covers every other column and the previous record's hash."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    # Assigned from the chain head, not by the database, so the sequence has no gaps and a deleted row shows.
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(255), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    key_id: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """A single row holding the last sequence and hash; appenders lock it, which serialises the chain."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ConsentRecord(Base):
    """One opt-in or opt-out; rows are only ever added, the latest per (citizen, channel, purpose) counts."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_records_lookup", "citizen_ref", "channel", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    citizen_ref: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PiiPattern(Base):
    """An administrator's extra personal-data kind, masked alongside the built-in ones."""

    __tablename__ = "pii_patterns"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    pattern: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnonymisedConversation(Base):
    """Conversations whose personal data was removed (erase request or retention), so no job does it twice."""

    __tablename__ = "anonymised_conversations"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    anonymised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

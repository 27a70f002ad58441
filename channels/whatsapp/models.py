"""WhatsApp tables: the outbox, contacts, media, templates and campaigns.

The schema is created by `core/migrations/versions/0004_whatsapp.py`; change both together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, UTCDateTime, utcnow


class ContactRow(Base):
    """A citizen as one business number knows them; the 24-hour window is counted per number."""

    __tablename__ = "wa_contacts"
    __table_args__ = (
        UniqueConstraint("phone_number_id", "citizen_ref"),
        Index("ix_wa_contacts_phone_number_id_wa_id", "phone_number_id", "wa_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone_number_id: Mapped[str] = mapped_column(String(64))
    citizen_ref: Mapped[str] = mapped_column(String(255))  # "whatsapp:<business-scoped user id>"
    bsuid: Mapped[str | None] = mapped_column(String(160))
    wa_id: Mapped[str | None] = mapped_column(String(32))  # the phone number, when Meta shares it
    profile_name: Mapped[str | None] = mapped_column(String(255))
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxRow(Base):
    """One message to send. `key` makes every enqueue idempotent (a reply's key is the inbound message id)."""

    __tablename__ = "wa_outbox"
    __table_args__ = (
        UniqueConstraint("key"),
        UniqueConstraint("wamid"),
        Index("ix_wa_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_wa_outbox_contact_id_status", "contact_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    phone_number_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int] = mapped_column(ForeignKey("wa_contacts.id", ondelete="CASCADE"))
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("wa_campaigns.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # text | interactive | template
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"type": ..., <type>: {...}} without the recipient
    purpose: Mapped[str | None] = mapped_column(String(64))  # consent purpose a template needs
    # queued → sending → accepted → sent → delivered → read; failed at any point
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wamid: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_title: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MediaRow(Base):
    """What a citizen sent as audio, image or document: metadata always, the file when it passes the limits."""

    __tablename__ = "wa_media"
    __table_args__ = (UniqueConstraint("wamid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    wamid: Mapped[str] = mapped_column(String(255))
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    media_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # audio | image | document
    mime_type: Mapped[str | None] = mapped_column(String(128))
    sha256: Mapped[str | None] = mapped_column(String(128))
    file_size: Mapped[int | None] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(255))
    voice: Mapped[bool] = mapped_column(Boolean, default=False)
    path: Mapped[str | None] = mapped_column(String(512))  # relative to ATENDE_DATA_DIR
    state: Mapped[str] = mapped_column(String(16))  # stored | rejected | failed
    reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TemplateRow(Base):
    """An approved (or pending) message template, as registered with Meta."""

    __tablename__ = "wa_templates"
    __table_args__ = (UniqueConstraint("name", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))  # MARKETING | UTILITY | AUTHENTICATION
    body: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[str]] = mapped_column(JSON)
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # APPROVED | PENDING | REJECTED | PAUSED | DISABLED
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignRow(Base):
    """A template sent to a segment of opted-in citizens, inside a weekly sending window, at a pace."""

    __tablename__ = "wa_campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    template_id: Mapped[int] = mapped_column(ForeignKey("wa_templates.id"))
    variables: Mapped[list[str]] = mapped_column(JSON)
    phone_number_id: Mapped[str] = mapped_column(String(64))
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    days: Mapped[list[int]] = mapped_column(JSON)  # ISO weekdays, 1 = Monday
    start_hour: Mapped[int] = mapped_column(Integer)
    end_hour: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    pace_per_min: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # draft | running | paused | done | cancelled
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignRecipientRow(Base):
    __tablename__ = "wa_campaign_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("wa_campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("wa_contacts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | enqueued | skipped
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("wa_outbox.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(64))

"""Domain tables: citizens, service catalogue, protocols, debts, appointment slots, verified conversations.

Every schema change here needs a matching revision in `core/migrations/versions` (0002 holds these; 0008
encrypts the citizens' personal fields).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base, UTCDateTime, utcnow

# A citizen's personal data, in one place: each field is stored encrypted in `<field>_encrypted`
# (domain.citizens encrypts and decrypts them), and the LGPD export/erase work from this list.
CITIZEN_PERSONAL_COLUMNS = ("cpf", "name", "birth_date", "phone", "email", "channel_ids")


def encrypted_column(field: str) -> str:
    """The column that holds one personal field's FieldCipher token."""
    return f"{field}_encrypted"


class Citizen(Base):
    """Personal fields hold Fernet tokens (never the clear value); go through CitizenDirectory to read or write."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Blind index (HMAC) of the CPF digits: lookups and uniqueness never need the clear value.
    # "erased:<id>" once the citizen is anonymised.
    cpf_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # NULL once erased (name keeps the anonymised placeholder, encrypted like any other name).
    cpf_encrypted: Mapped[str | None] = mapped_column(Text)
    name_encrypted: Mapped[str | None] = mapped_column(Text)
    birth_date_encrypted: Mapped[str | None] = mapped_column(Text)  # ISO date
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    email_encrypted: Mapped[str | None] = mapped_column(Text)
    channel_ids_encrypted: Mapped[str | None] = mapped_column(Text)  # JSON object; NULL when empty
    consent_whatsapp: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    anonymized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServiceEntry(Base):
    """A service the body offers: opened as a protocol (with an SLA and a team) or booked as an appointment."""

    __tablename__ = "services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # "protocol", "appointment" or "contact" (catalog.CONTACT_SERVICE)
    team: Mapped[str] = mapped_column(String(64))
    sla_business_days: Mapped[int] = mapped_column(Integer, default=10)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ProtocolCounter(Base):
    """The last number given per year; incremented atomically in the transaction that opens a protocol."""

    __tablename__ = "protocol_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer)


class Protocol(Base):
    __tablename__ = "protocols"
    __table_args__ = (Index("ix_protocols_citizen_id_status", "citizen_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    service_code: Mapped[str] = mapped_column(ForeignKey("services.code"))
    team: Mapped[str] = mapped_column(String(64))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id", ondelete="SET NULL"))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="aberto")
    channel: Mapped[str | None] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    due_date: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # SHA-256 of the access code given to whoever opened it (domain.protocols); NULL: owner and staff only.
    access_code_hash: Mapped[str | None] = mapped_column(String(64))


class ProtocolEvent(Base):
    """One step of a protocol's status history."""

    __tablename__ = "protocol_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocols.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProtocolComment(Base):
    __tablename__ = "protocol_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocols.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(255))  # "citizen:<id>", "user:42", "integration:ouvidoria"
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Debt(Base):
    __tablename__ = "debts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "IPTU", "taxa", "multa"
    reference: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))
    # Integer cents: exact on every backend (SQLite has no decimal type).
    amount_cents: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="aberto")  # stored "aberto" or "pago"
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AppointmentSlot(Base):
    __tablename__ = "appointment_slots"
    __table_args__ = (UniqueConstraint("service_code", "starts_at", "location"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_code: Mapped[str] = mapped_column(ForeignKey("services.code"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(255))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    # Changed only by a conditional UPDATE (booked < capacity), which is what rules out double booking.
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index(
            "uq_appointments_active_slot_citizen",
            "slot_id",
            "citizen_id",
            unique=True,
            sqlite_where=text("status = 'agendado'"),
            postgresql_where=text("status = 'agendado'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id"), index=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="agendado")  # "agendado" or "cancelado"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VerifiedConversation(Base):
    """A conversation whose citizen proved who they are (CPF + birth date), until `expires_at`."""

    __tablename__ = "verified_conversations"

    # Not a foreign key: integrations acting for their own conversations (scope "assistant") use their ids.
    conversation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"), index=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

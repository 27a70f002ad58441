"""Domain tables: citizens, protocols, payments, appointments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain types only: a revision must keep meaning the same schema when the models move on.
    op.create_table(
        "citizens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cpf_hash", sa.String(length=64), nullable=False),
        sa.Column("cpf", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("phone", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("consent_whatsapp", sa.Boolean(), nullable=False),
        sa.Column("consent_email", sa.Boolean(), nullable=False),
        sa.Column("consent_sms", sa.Boolean(), nullable=False),
        sa.Column("anonymized_at", _TZ, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizens")),
        sa.UniqueConstraint("cpf_hash", name=op.f("uq_citizens_cpf_hash")),
    )
    op.create_table(
        "services",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("sla_business_days", sa.Integer(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_services")),
    )
    op.create_table(
        "protocol_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_protocol_counters")),
    )
    op.create_table(
        "protocols",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("opened_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("closed_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_protocols_citizen_id_citizens"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["service_code"], ["services.code"], name=op.f("fk_protocols_service_code_services")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocols")),
        sa.UniqueConstraint("number", name=op.f("uq_protocols_number")),
    )
    op.create_index("ix_protocols_citizen_id_status", "protocols", ["citizen_id", "status"])
    op.create_table(
        "protocol_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("protocol_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["protocol_id"], ["protocols.id"], name=op.f("fk_protocol_events_protocol_id_protocols"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_events")),
    )
    op.create_index(op.f("ix_protocol_events_protocol_id"), "protocol_events", ["protocol_id"])
    op.create_table(
        "protocol_comments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("protocol_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["protocol_id"],
            ["protocols.id"],
            name=op.f("fk_protocol_comments_protocol_id_protocols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_comments")),
    )
    op.create_index(op.f("ix_protocol_comments_protocol_id"), "protocol_comments", ["protocol_id"])
    op.create_table(
        "debts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paid_at", _TZ, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_debts_citizen_id_citizens"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debts")),
    )
    op.create_index(op.f("ix_debts_citizen_id"), "debts", ["citizen_id"])
    op.create_table(
        "appointment_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("starts_at", _TZ, nullable=False),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_code"], ["services.code"], name=op.f("fk_appointment_slots_service_code_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_slots")),
        sa.UniqueConstraint(
            "service_code",
            "starts_at",
            "location",
            name=op.f("uq_appointment_slots_service_code_starts_at_location"),
        ),
    )
    op.create_index(op.f("ix_appointment_slots_service_code"), "appointment_slots", ["service_code"])
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("cancelled_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"], ["citizens.id"], name=op.f("fk_appointments_citizen_id_citizens"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["appointment_slots.id"], name=op.f("fk_appointments_slot_id_appointment_slots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index(op.f("ix_appointments_slot_id"), "appointments", ["slot_id"])
    op.create_index(op.f("ix_appointments_citizen_id"), "appointments", ["citizen_id"])
    # One active booking per citizen and slot; cancelled ones stay as history.
    op.create_index(
        "uq_appointments_active_slot_citizen",
        "appointments",
        ["slot_id", "citizen_id"],
        unique=True,
        sqlite_where=sa.text("status = 'agendado'"),
        postgresql_where=sa.text("status = 'agendado'"),
    )
    op.create_table(
        "verified_conversations",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("verified_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_verified_conversations_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_verified_conversations")),
    )
    op.create_index(op.f("ix_verified_conversations_citizen_id"), "verified_conversations", ["citizen_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes with it; children before parents.
    op.drop_table("verified_conversations")
    op.drop_table("appointments")
    op.drop_table("appointment_slots")
    op.drop_table("debts")
    op.drop_table("protocol_comments")
    op.drop_table("protocol_events")
    op.drop_table("protocols")
    op.drop_table("protocol_counters")
    op.drop_table("services")
    op.drop_table("citizens")

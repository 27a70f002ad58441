"""WhatsApp inbox, outbox, statuses, templates and campaigns.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    # Plain types only: a revision must keep meaning the same schema when the models move on.
    op.create_table(
        "wa_contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("citizen_ref", sa.String(length=255), nullable=False),
        sa.Column("bsuid", sa.String(length=160), nullable=True),
        sa.Column("wa_id", sa.String(length=32), nullable=True),
        sa.Column("profile_name", sa.String(length=255), nullable=True),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("wa_contacts", "conversation_id", "conversations", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_contacts")),
        sa.UniqueConstraint("phone_number_id", "citizen_ref", name=op.f("uq_wa_contacts_phone_number_id_citizen_ref")),
    )
    op.create_index("ix_wa_contacts_phone_number_id_wa_id", "wa_contacts", ["phone_number_id", "wa_id"])

    op.create_table(
        "wa_templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_templates")),
        sa.UniqueConstraint("name", "language", name=op.f("uq_wa_templates_name_language")),
    )

    op.create_table(
        "wa_campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("days", sa.JSON(), nullable=False),
        sa.Column("start_hour", sa.Integer(), nullable=False),
        sa.Column("end_hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("pace_per_min", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_enqueued_at", sa.DateTime(timezone=True), nullable=True),
        _fk("wa_campaigns", "template_id", "wa_templates"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_campaigns")),
    )

    op.create_table(
        "wa_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wamid", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_title", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        _fk("wa_outbox", "contact_id", "wa_contacts", "CASCADE"),
        _fk("wa_outbox", "conversation_id", "conversations", "SET NULL"),
        _fk("wa_outbox", "campaign_id", "wa_campaigns", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_wa_outbox_key")),
        sa.UniqueConstraint("wamid", name=op.f("uq_wa_outbox_wamid")),
    )
    op.create_index(op.f("ix_wa_outbox_campaign_id"), "wa_outbox", ["campaign_id"])
    op.create_index("ix_wa_outbox_status_next_attempt_at", "wa_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_wa_outbox_contact_id_status", "wa_outbox", ["contact_id", "status"])

    op.create_table(
        "wa_campaign_recipients",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        _fk("wa_campaign_recipients", "campaign_id", "wa_campaigns", "CASCADE"),
        _fk("wa_campaign_recipients", "contact_id", "wa_contacts", "CASCADE"),
        _fk("wa_campaign_recipients", "outbox_id", "wa_outbox", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_campaign_recipients")),
        sa.UniqueConstraint("campaign_id", "contact_id", name=op.f("uq_wa_campaign_recipients_campaign_id_contact_id")),
    )

    op.create_table(
        "wa_inbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_inbox")),
        sa.UniqueConstraint("key", name=op.f("uq_wa_inbox_key")),
    )
    op.create_index("ix_wa_inbox_state_id", "wa_inbox", ["state", "id"])

    op.create_table(
        "wa_media",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("wamid", sa.String(length=255), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=True),
        sa.Column("media_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("mime_type", sa.String(length=128), nullable=True),
        sa.Column("sha256", sa.String(length=128), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("voice", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("wa_media", "conversation_id", "conversations", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wa_media")),
        sa.UniqueConstraint("wamid", name=op.f("uq_wa_media_wamid")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes with it; dependants go first.
    op.drop_table("wa_media")
    op.drop_table("wa_inbox")
    op.drop_table("wa_campaign_recipients")
    op.drop_table("wa_outbox")
    op.drop_table("wa_campaigns")
    op.drop_table("wa_templates")
    op.drop_table("wa_contacts")

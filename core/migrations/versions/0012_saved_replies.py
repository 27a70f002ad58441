"""Saved replies per team for the agents' console, and the protocol number a closed service gets.

`saved_replies.search_text` holds the title and text folded (lower case, no accents) so that search is the same
plain LIKE on SQLite and PostgreSQL; `handoffs.protocol_number` is the service's protocol, a protocol of kind
"contact" in the protocol book (docs/decisions/0033-saved-replies-and-service-protocols.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.models import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_replies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_replies")),
    )
    op.create_index(op.f("ix_saved_replies_team"), "saved_replies", ["team"], unique=False)
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("protocol_number", sa.String(length=16), nullable=True))
        batch.create_index(op.f("ix_handoffs_protocol_number"), ["protocol_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_index(op.f("ix_handoffs_protocol_number"))
        batch.drop_column("protocol_number")
    op.drop_index(op.f("ix_saved_replies_team"), table_name="saved_replies")
    op.drop_table("saved_replies")

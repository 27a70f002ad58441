"""Each handed-off message's language and its translation for the other side.

A citizen's message in a language other than the agent's is stored with its translation into the agent's language,
and an agent's reply with the translation the citizen received (docs/decisions/0032-handoff-translation.md).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message_annotations") as batch:
        batch.add_column(sa.Column("language", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("translation", sa.Text(), nullable=True))
        batch.add_column(sa.Column("translation_language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_annotations") as batch:
        batch.drop_column("translation_language")
        batch.drop_column("translation")
        batch.drop_column("language")

"""The web chat key a conversation is bound to: the SHA-256 digest of the browser's random chat key.

Only the browser that created a web conversation may read or write it through /api/conversations/{id}…; rows of
other channels keep NULL and are never reachable through the web API (docs/decisions/0035-conversation-binding.md).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("web_key_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("web_key_hash")

"""API tokens carry who approved them, and every token expires.

`api_tokens.approved_by` / `approved_at`: a token with data scopes issued by a non-administrator waits (both
empty) until an administrator approves it. Tokens issued before this revision were valid, so they count as
approved by "system:migration"; tokens that never expired get an expiry ATENDE_TOKEN_MAX_DAYS (default 90)
days from the upgrade, so integrations have that long to rotate
(docs/decisions/0037-tokens-sign-in-and-staff-edges.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from core.models import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _max_days() -> int:
    raw = os.environ.get("ATENDE_TOKEN_MAX_DAYS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 90


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("approved_at", UTCDateTime(), nullable=True))
    tokens = sa.table(
        "api_tokens",
        sa.column("created_at", UTCDateTime()),
        sa.column("expires_at", UTCDateTime()),
        sa.column("approved_by", sa.String()),
        sa.column("approved_at", UTCDateTime()),
    )
    now = datetime.now(UTC)
    op.execute(tokens.update().values(approved_by="system:migration", approved_at=tokens.c.created_at))
    op.execute(
        tokens.update().where(tokens.c.expires_at.is_(None)).values(expires_at=now + timedelta(days=_max_days()))
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")

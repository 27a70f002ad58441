"""One inbox for every channel: `wa_inbox` becomes `inbox`, with the channel, its account, the conversation and the
reply a repeated message is answered with.

The web chat's client message ids go into the same durable, idempotent inbox as WhatsApp's webhook items, so a
retried send is answered once (docs/decisions/0046-one-conversation-service.md). The table is created under its new
name and the rows copied, which keeps constraint names right on SQLite and PostgreSQL alike.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMMON = (
    "id, key, kind, payload, received_at, state, attempts, not_before, lease_owner, lease_until, processed_at, "
    "result, error"
)


def _table(name: str, *, generic: bool) -> None:
    unique = ("channel", "key") if generic else ("key",)
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
    ]
    if generic:
        columns += [
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("account", sa.String(length=64), nullable=True),
            sa.Column("conversation_id", sa.String(length=32), nullable=True),
        ]
    else:
        columns.append(sa.Column("phone_number_id", sa.String(length=64), nullable=True))
    columns += [
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
    ]
    if generic:
        columns.append(sa.Column("reply", sa.JSON(), nullable=True))
    op.create_table(
        name,
        *columns,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint(*unique, name=op.f(f"uq_{name}_{'_'.join(unique)}")),
    )
    op.create_index(f"ix_{name}_state_id", name, ["state", "id"])


def _restart_ids(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
        )


def upgrade() -> None:
    _table("inbox", generic=True)
    op.execute(
        f"INSERT INTO inbox ({_COMMON}, channel, account) SELECT {_COMMON}, 'whatsapp', phone_number_id FROM wa_inbox"
    )
    _restart_ids("inbox")
    op.drop_index("ix_wa_inbox_state_id", table_name="wa_inbox")
    op.drop_table("wa_inbox")


def downgrade() -> None:
    _table("wa_inbox", generic=False)
    op.execute(
        f"INSERT INTO wa_inbox ({_COMMON}, phone_number_id) "
        f"SELECT {_COMMON}, account FROM inbox WHERE channel = 'whatsapp'"
    )
    _restart_ids("wa_inbox")
    op.drop_index("ix_inbox_state_id", table_name="inbox")
    op.drop_table("inbox")

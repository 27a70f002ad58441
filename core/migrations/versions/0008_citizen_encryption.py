"""Citizens' personal fields encrypted at rest; the CPF blind index recomputed with the LGPD cipher.

Each of cpf, name, birth_date, phone, email and channel_ids becomes `<field>_encrypted`, a Text column holding a
FieldCipher (Fernet) token, and the clear column is dropped. Existing rows are converted in place.

The cipher comes from `core.migrate.upgrade(url, cipher=…)` (the app passes its own), else from the
environment's settings, and is only built when a row needs it. Columns are added and dropped in place, never
by rebuilding the table: on SQLite, with foreign keys on, dropping the old table would cascade to the
citizens' debts and null their protocols.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import context, op

if TYPE_CHECKING:
    from core.lgpd.crypto import FieldCipher

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (field, clear type as 0002 created it, NOT NULL in 0002, server default while the column is re-added)
_FIELDS: tuple[tuple[str, Any, bool, str | None], ...] = (
    ("cpf", sa.String(length=255), True, ""),
    ("name", sa.String(length=255), True, ""),
    ("birth_date", sa.Date(), False, None),
    ("phone", sa.String(length=255), False, None),
    ("email", sa.String(length=255), False, None),
    ("channel_ids", sa.JSON(), True, "{}"),
)
_BATCH = 500


class _LazyCipher:
    def __init__(self) -> None:
        self._cipher: FieldCipher | None = None

    def __call__(self) -> FieldCipher:
        if self._cipher is None:
            given = context.config.attributes.get("field_cipher")
            if given is None:
                from core.lgpd.crypto import cipher_from_settings
                from core.settings import Settings

                given = cipher_from_settings(Settings())
            self._cipher = given
        return self._cipher


def _citizens(*columns: sa.ColumnClause[Any]) -> sa.TableClause:
    return sa.table("citizens", sa.column("id", sa.Integer()), sa.column("cpf_hash", sa.String()), *columns)


def _batches(table: sa.TableClause) -> Iterator[Sequence[sa.Row[Any]]]:
    """Keyset-paginated rows of `table`, so a large register is not held in memory at once."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(_BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def upgrade() -> None:
    for name, _, _, _ in _FIELDS:
        op.add_column("citizens", sa.Column(f"{name}_encrypted", sa.Text(), nullable=True))

    clear = _citizens(*(sa.column(name, kind) for name, kind, _, _ in _FIELDS))
    sealed = _citizens(*(sa.column(f"{name}_encrypted", sa.Text()) for name, _, _, _ in _FIELDS))
    cipher = _LazyCipher()
    bind = op.get_bind()
    for rows in _batches(clear):
        for row in rows:
            values: dict[str, Any] = {
                "cpf": row.cpf or None,  # "" is how 0002 erased a CPF
                "name": row.name,
                "birth_date": row.birth_date.isoformat() if row.birth_date else None,
                "phone": row.phone,
                "email": row.email,
                "channel_ids": json.dumps(row.channel_ids, sort_keys=True) if row.channel_ids else None,
            }
            update = {f"{k}_encrypted": None if v is None else cipher().encrypt(v) for k, v in values.items()}
            if values["cpf"] and not row.cpf_hash.startswith("erased:"):
                # Rows written by the tools alone used another keyed hash: the cipher's index is the one looked up.
                update["cpf_hash"] = cipher().blind_index(values["cpf"], kind="cpf")
            bind.execute(sa.update(sealed).where(sealed.c.id == row.id).values(update))

    for name, _, _, _ in _FIELDS:
        op.drop_column("citizens", name)


def downgrade() -> None:
    # Re-added NOT NULL with a default (SQLite cannot tighten a column in place), filled, default dropped.
    for name, kind, not_null, default in _FIELDS:
        op.add_column(
            "citizens",
            sa.Column(name, kind, nullable=not not_null, server_default=default if not_null else None),
        )

    sealed = _citizens(*(sa.column(f"{name}_encrypted", sa.Text()) for name, _, _, _ in _FIELDS))
    clear = _citizens(*(sa.column(name, kind) for name, kind, _, _ in _FIELDS))
    cipher = _LazyCipher()
    bind = op.get_bind()
    for rows in _batches(sealed):
        for row in rows:
            tokens = {name: row._mapping[f"{name}_encrypted"] for name, _, _, _ in _FIELDS}
            opened = {name: None if token is None else cipher().decrypt(token) for name, token in tokens.items()}
            birth = opened["birth_date"]
            bind.execute(
                sa.update(clear)
                .where(clear.c.id == row.id)
                .values(
                    cpf=opened["cpf"] or "",
                    name=opened["name"] or "",
                    birth_date=date.fromisoformat(birth) if birth else None,
                    phone=opened["phone"],
                    email=opened["email"],
                    channel_ids=json.loads(opened["channel_ids"]) if opened["channel_ids"] else {},
                )
            )

    for name, _, _, _ in _FIELDS:
        op.drop_column("citizens", f"{name}_encrypted")
    if bind.dialect.name == "postgresql":
        for name, _, not_null, _ in _FIELDS:
            if not_null:
                op.alter_column("citizens", name, server_default=None)

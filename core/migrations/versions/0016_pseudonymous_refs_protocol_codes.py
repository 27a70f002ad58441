"""Citizens known by phone get pseudonymous refs, so an erased citizen leaves no phone number behind; protocols
get an access code, so a sequential number alone no longer reveals a protocol's status.

- `conversations.citizen_ref`, `wa_contacts.citizen_ref`, `consent_records.citizen_ref` and the `citizen_refs` of a
  WhatsApp campaign's segment that read "whatsapp:<phone>" become "whatsapp:tel.<blind index>" (core.lgpd.refs),
  the ref the channel writes from now on. The audit trail is left as it is: its records are signed in a chain, and
  rewriting them would make `atende audit verify` report them as edited
  (docs/decisions/0040-pseudonymous-refs-and-verification-privacy.md).
- `protocols.access_code_hash`: the SHA-256 of the code given with a new protocol's number. Existing protocols
  get none: their status goes to their verified owner and to staff only.

The cipher comes from `core.migrate.upgrade(url, cipher=…)` (the app passes its own), else from the environment's
settings, and is only built when a row needs it.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import context, op

if TYPE_CHECKING:
    from core.lgpd.crypto import FieldCipher

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column) of every ref that may hold a "whatsapp:<phone>"; each table's key is "id"
_REF_COLUMNS: tuple[tuple[str, str], ...] = (
    ("conversations", "citizen_ref"),
    ("wa_contacts", "citizen_ref"),
    ("consent_records", "citizen_ref"),
    ("consent_records", "actor"),  # a consent the citizen gave themselves ("SAIR")
)


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


def upgrade() -> None:
    from core.lgpd.refs import is_phone_ref, pseudonymous_ref

    op.add_column("protocols", sa.Column("access_code_hash", sa.String(length=64), nullable=True))

    bind = op.get_bind()
    cipher = _LazyCipher()
    for name, ref_column in _REF_COLUMNS:
        tbl = sa.table(name, sa.column("id"), sa.column(ref_column, sa.String()))
        stored = tbl.c[ref_column]
        # Only refs that can be phones are read: a digit (or a "+") right after the prefix.
        candidates = bind.execute(
            sa.select(tbl.c.id, stored).where(
                sa.or_(stored.like("whatsapp:+%"), *(stored.like(f"whatsapp:{d}%") for d in "0123456789"))
            )
        ).all()
        for row_id, ref in candidates:
            if isinstance(ref, str) and is_phone_ref(ref):
                bind.execute(
                    sa.update(tbl).where(tbl.c.id == row_id).values({ref_column: pseudonymous_ref(cipher(), ref)})
                )

    campaigns = sa.table("wa_campaigns", sa.column("id", sa.Integer()), sa.column("segment", sa.JSON()))
    for row_id, segment in bind.execute(sa.select(campaigns.c.id, campaigns.c.segment)).all():
        if not isinstance(segment, dict):
            continue
        refs: Any = segment.get("citizen_refs")
        if not isinstance(refs, list) or not any(isinstance(r, str) and is_phone_ref(r) for r in refs):
            continue
        converted = [pseudonymous_ref(cipher(), r) if isinstance(r, str) else r for r in refs]
        bind.execute(
            sa.update(campaigns).where(campaigns.c.id == row_id).values(segment={**segment, "citizen_refs": converted})
        )


def downgrade() -> None:
    # The pseudonyms cannot be turned back into phone numbers; they stay, and keep working as refs.
    op.drop_column("protocols", "access_code_hash")

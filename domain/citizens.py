"""The citizen register: personal fields encrypted at rest, found by CPF through its blind index, shown masked.

Every read and write of a citizen's personal data goes through `CitizenDirectory`, which holds the LGPD field
cipher (core.lgpd.crypto): rows keep Fernet tokens, callers get a decrypted `CitizenRecord`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.lgpd.crypto import BlindIndexColumn, EncryptedColumn, FieldCipher
from domain.cpf import mask_cpf
from domain.masking import mask_birth_date, mask_email, mask_phone
from domain.models import CITIZEN_PERSONAL_COLUMNS, Citizen, encrypted_column

# What `atende lgpd rotate-key` re-encrypts and re-indexes (registered in `build_services`).
CITIZEN_ENCRYPTED_COLUMNS: Sequence[EncryptedColumn] = tuple(
    EncryptedColumn(Citizen.__tablename__, encrypted_column(name)) for name in CITIZEN_PERSONAL_COLUMNS
)
CITIZEN_BLIND_INDEXES: Sequence[BlindIndexColumn] = (
    BlindIndexColumn(Citizen.__tablename__, "cpf_hash", encrypted_column("cpf"), kind="cpf"),
)


@dataclass(frozen=True)
class CitizenRecord:
    """A citizen with the personal fields decrypted; `cpf` is "" once the citizen is anonymised."""

    id: int
    cpf: str
    name: str
    birth_date: date | None
    phone: str | None
    email: str | None
    channel_ids: dict[str, str] = field(default_factory=dict)
    consent_whatsapp: bool = False
    consent_email: bool = False
    consent_sms: bool = False
    anonymized_at: datetime | None = None
    created_at: datetime | None = None


class CitizenDirectory:
    def __init__(self, session_factory: sessionmaker[Session], cipher: FieldCipher) -> None:
        self._sessions = session_factory
        self._cipher = cipher

    def cpf_hash(self, digits: str) -> str:
        """The blind index of a CPF (11 digits): what the `cpf_hash` column holds and lookups compare."""
        return self._cipher.blind_index(digits, kind="cpf")

    def find_in(self, session: Session, digits: str) -> Citizen | None:
        """The stored row (encrypted fields) inside the caller's session; `reveal` decrypts it."""
        return session.scalar(select(Citizen).where(Citizen.cpf_hash == self.cpf_hash(digits)))

    def by_cpf(self, digits: str) -> CitizenRecord | None:
        with self._sessions() as session:
            row = self.find_in(session, digits)
            return None if row is None else self.reveal(row)

    def get(self, citizen_id: int) -> CitizenRecord | None:
        with self._sessions() as session:
            row = session.get(Citizen, citizen_id)
            return None if row is None else self.reveal(row)

    def reveal(self, row: Citizen) -> CitizenRecord:
        """The row with its personal fields decrypted."""
        birth = self._open(row.birth_date_encrypted)
        channel_ids = self._open(row.channel_ids_encrypted)
        return CitizenRecord(
            id=row.id,
            cpf=self._open(row.cpf_encrypted) or "",
            name=self._open(row.name_encrypted) or "",
            birth_date=date.fromisoformat(birth) if birth else None,
            phone=self._open(row.phone_encrypted),
            email=self._open(row.email_encrypted),
            channel_ids=json.loads(channel_ids) if channel_ids else {},
            consent_whatsapp=row.consent_whatsapp,
            consent_email=row.consent_email,
            consent_sms=row.consent_sms,
            anonymized_at=row.anonymized_at,
            created_at=row.created_at,
        )

    def upsert(
        self,
        session: Session,
        *,
        cpf: str,
        name: str,
        birth_date: date | None,
        phone: str | None = None,
        email: str | None = None,
        channel_ids: dict[str, str] | None = None,
        consent_whatsapp: bool = False,
        consent_email: bool = False,
        consent_sms: bool = False,
    ) -> Citizen:
        """Create or update the citizen with this CPF (digits only) inside the caller's transaction.

        A field whose value did not change keeps its token, so upserting the same data twice writes nothing.
        """
        citizen = self.find_in(session, cpf)
        if citizen is None:
            citizen = Citizen(cpf_hash=self.cpf_hash(cpf), cpf_encrypted=self._seal(cpf))
            session.add(citizen)
        self._assign(citizen, "name", name)
        self._assign(citizen, "birth_date", birth_date.isoformat() if birth_date else None)
        self._assign(citizen, "phone", phone)
        self._assign(citizen, "email", email)
        self._assign(citizen, "channel_ids", json.dumps(channel_ids, sort_keys=True) if channel_ids else None)
        citizen.consent_whatsapp = consent_whatsapp
        citizen.consent_email = consent_email
        citizen.consent_sms = consent_sms
        session.flush()
        return citizen

    def anonymise(self, citizen: Citizen, *, name: str, at: datetime) -> None:
        """Drop every personal field (the name becomes `name`); no CPF finds the row any more."""
        citizen.cpf_hash = f"erased:{citizen.id}"  # unique, and no CPF hashes to it: the person can no longer verify
        for column in CITIZEN_PERSONAL_COLUMNS:
            setattr(citizen, encrypted_column(column), None)
        citizen.name_encrypted = self._seal(name)
        citizen.consent_whatsapp = citizen.consent_email = citizen.consent_sms = False
        citizen.anonymized_at = at

    def _assign(self, citizen: Citizen, field_name: str, value: str | None) -> None:
        column = encrypted_column(field_name)
        if self._open(getattr(citizen, column)) != value:
            setattr(citizen, column, self._seal(value))

    def _seal(self, value: str | None) -> str | None:
        return None if value is None else self._cipher.encrypt(value)

    def _open(self, token: str | None) -> str | None:
        return None if token is None else self._cipher.decrypt(token)


def citizen_profile(citizen: CitizenRecord, *, verified: bool) -> dict[str, Any]:
    """What `citizen_lookup` returns: enough to confirm identity, never a full CPF, phone or e-mail."""
    return {
        "citizen_id": str(citizen.id),
        "name": citizen.name,
        "cpf_masked": mask_cpf(citizen.cpf),
        "birth_date_masked": mask_birth_date(citizen.birth_date),
        "phone_masked": mask_phone(citizen.phone),
        "email_masked": mask_email(citizen.email),
        "verified": verified,
    }


def first_name(citizen: CitizenRecord) -> str:
    return citizen.name.split()[0] if citizen.name.strip() else ""

"""The citizen register: found by CPF through its keyed hash, shown masked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tools_mcp.cpf import mask_cpf
from tools_mcp.masking import mask_birth_date, mask_email, mask_phone
from tools_mcp.models import Citizen


class CitizenDirectory:
    def __init__(self, session_factory: sessionmaker[Session], cpf_index: Callable[[str], str]) -> None:
        self._sessions = session_factory
        self._cpf_index = cpf_index

    def cpf_hash(self, digits: str) -> str:
        """The blind index of a CPF (11 digits): what the `cpf_hash` column holds and lookups compare."""
        return self._cpf_index(digits)

    def find_in(self, session: Session, digits: str) -> Citizen | None:
        return session.scalar(select(Citizen).where(Citizen.cpf_hash == self.cpf_hash(digits)))

    def by_cpf(self, digits: str) -> Citizen | None:
        with self._sessions() as session:
            return self.find_in(session, digits)

    def get(self, citizen_id: int) -> Citizen | None:
        with self._sessions() as session:
            return session.get(Citizen, citizen_id)

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
        """Create or update the citizen with this CPF (digits only) inside the caller's transaction."""
        citizen = self.find_in(session, cpf)
        if citizen is None:
            citizen = Citizen(cpf_hash=self.cpf_hash(cpf), cpf=cpf)
            session.add(citizen)
        citizen.name = name
        citizen.birth_date = birth_date
        citizen.phone = phone
        citizen.email = email
        citizen.channel_ids = dict(channel_ids or {})
        citizen.consent_whatsapp = consent_whatsapp
        citizen.consent_email = consent_email
        citizen.consent_sms = consent_sms
        session.flush()
        return citizen


def citizen_profile(citizen: Citizen, *, verified: bool) -> dict[str, Any]:
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


def first_name(citizen: Citizen) -> str:
    return citizen.name.split()[0] if citizen.name.strip() else ""

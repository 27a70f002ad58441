"""The domain's personal data for LGPD requests: export everything held on a citizen, or anonymise it.

Registered with `core.data_subjects.DataSubjectRegistry` in `build_services`. Debts and appointments stay
(tax records have a legal retention duty) but lose every link to a person other than the anonymised citizen row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.data_subjects import DataSubject
from domain.citizens import CitizenDirectory
from domain.cpf import normalize_cpf
from domain.debts import amount_text
from domain.errors import DomainError
from domain.models import (
    CITIZEN_PERSONAL_COLUMNS,
    Appointment,
    AppointmentSlot,
    Citizen,
    Debt,
    Protocol,
    ProtocolComment,
    VerifiedConversation,
)

ERASED_NAME = "Titular anonimizado"
ERASED_TEXT = "[removido a pedido do titular]"


def _rowcount(result: object) -> int:
    # DML results are CursorResults, whose rowcount the generic Result type does not declare.
    return int(getattr(result, "rowcount", 0))


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def find_citizen(session: Session, citizens: CitizenDirectory, subject: DataSubject) -> Citizen | None:
    if subject.citizen_id is not None and subject.citizen_id.isdigit():
        citizen = session.get(Citizen, int(subject.citizen_id))
        if citizen is not None:
            return citizen
    if subject.cpf:
        try:
            return citizens.find_in(session, normalize_cpf(subject.cpf))
        except DomainError:
            return None
    return None


class CitizenDataSource:
    """Citizens with their protocols, comments, debts, appointments and verified conversations."""

    name = "citizens"

    def __init__(self, session_factory: sessionmaker[Session], citizens: CitizenDirectory, clock: Clock) -> None:
        self._sessions = session_factory
        self._citizens = citizens
        self._clock = clock

    def _find(self, session: Session, subject: DataSubject) -> Citizen | None:
        return find_citizen(session, self._citizens, subject)

    def export(self, subject: DataSubject) -> dict[str, Any]:
        with self._sessions() as session:
            citizen = self._find(session, subject)
            if citizen is None:
                return {}
            cid = citizen.id
            protocols = session.scalars(select(Protocol).where(Protocol.citizen_id == cid).order_by(Protocol.id)).all()
            comments = session.scalars(
                select(ProtocolComment).where(ProtocolComment.author == f"citizen:{cid}").order_by(ProtocolComment.id)
            ).all()
            debts = session.scalars(select(Debt).where(Debt.citizen_id == cid).order_by(Debt.id)).all()
            appointments = session.execute(
                select(Appointment, AppointmentSlot)
                .join(AppointmentSlot, AppointmentSlot.id == Appointment.slot_id)
                .where(Appointment.citizen_id == cid)
                .order_by(Appointment.id)
            ).all()
            verified = session.scalars(
                select(VerifiedConversation.conversation_id).where(VerifiedConversation.citizen_id == cid)
            ).all()
            clear = self._citizens.reveal(citizen)
            record = {column: _iso(getattr(clear, column)) for column in CITIZEN_PERSONAL_COLUMNS}
            return {
                "citizen": {
                    "citizen_id": str(cid),
                    **record,
                    "consent_whatsapp": clear.consent_whatsapp,
                    "consent_email": clear.consent_email,
                    "consent_sms": clear.consent_sms,
                    "created_at": _iso(clear.created_at),
                },
                "protocols": [
                    {
                        "number": p.number,
                        "service": p.service_code,
                        "status": p.status,
                        "description": p.description,
                        "address": p.address,
                        "opened_at": _iso(p.opened_at),
                    }
                    for p in protocols
                ],
                "protocol_comments": [
                    {"protocol_id": c.protocol_id, "text": c.text, "created_at": _iso(c.created_at)} for c in comments
                ],
                "debts": [
                    {
                        "reference": d.reference,
                        "kind": d.kind,
                        "amount": amount_text(d.amount_cents),
                        "due_date": _iso(d.due_date),
                        "status": d.status,
                    }
                    for d in debts
                ],
                "appointments": [
                    {
                        "service": s.service_code,
                        "starts_at": _iso(s.starts_at),
                        "location": s.location,
                        "status": a.status,
                    }
                    for a, s in appointments
                ],
                "verified_conversations": list(verified),
            }

    def erase(self, subject: DataSubject) -> int:
        with self._sessions.begin() as session:
            citizen = self._find(session, subject)
            if citizen is None:
                return 0
            cid = citizen.id
            touched = 1
            self._citizens.anonymise(citizen, name=ERASED_NAME, at=self._clock.now())
            result = session.execute(
                update(Protocol)
                .where(Protocol.citizen_id == cid)
                .values(description=ERASED_TEXT, address=None)
                .execution_options(synchronize_session=False)
            )
            touched += _rowcount(result)
            result = session.execute(
                update(ProtocolComment)
                .where(ProtocolComment.author == f"citizen:{cid}")
                .values(text=ERASED_TEXT)
                .execution_options(synchronize_session=False)
            )
            touched += _rowcount(result)
            result = session.execute(delete(VerifiedConversation).where(VerifiedConversation.citizen_id == cid))
            touched += _rowcount(result)
            return touched


class CitizenResolver:
    """Maps a CPF to the citizen id and back, and adds the `citizen:<id>` ref conversations carry."""

    def __init__(self, session_factory: sessionmaker[Session], citizens: CitizenDirectory) -> None:
        self._sessions = session_factory
        self._citizens = citizens

    def resolve(self, subject: DataSubject) -> DataSubject:
        with self._sessions() as session:
            citizen = find_citizen(session, self._citizens, subject)
            if citizen is None:
                return subject
            return DataSubject(
                citizen_id=str(citizen.id),
                cpf=self._citizens.reveal(citizen).cpf or subject.cpf,
                citizen_refs=(*subject.citizen_refs, f"citizen:{citizen.id}"),
            )

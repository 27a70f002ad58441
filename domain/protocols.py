"""Protocols (tickets): yearly sequential numbers, SLA in business days, a status workflow with history.

Numbers are sequential, so a number alone proves nothing: opening a protocol also gives an access code, and the
citizen quotes the reference "2026-000123-K7Q9" to follow it without signing in. Only a hash of the code is kept
(docs/decisions/0040-pseudonymous-refs-and-verification-privacy.md).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.ratelimit import RateLimiter
from domain.calendar import add_business_days
from domain.catalog import CONTACT_SERVICE, normalize_key
from domain.errors import DomainError
from domain.models import Protocol, ProtocolComment, ProtocolCounter, ProtocolEvent, ServiceEntry

STATUSES = ("aberto", "em_analise", "encaminhado", "concluido", "cancelado")
TRANSITIONS: dict[str, frozenset[str]] = {
    "aberto": frozenset({"em_analise", "cancelado"}),
    "em_analise": frozenset({"encaminhado", "concluido", "cancelado"}),
    "encaminhado": frozenset({"concluido", "cancelado"}),
    "concluido": frozenset(),
    "cancelado": frozenset(),
}
_NUMBER = re.compile(r"(\d{4})-?(\d{1,6})(?:-([0-9A-Za-z]{4}))?")
# No 0/O, 1/I/L or U: a code read aloud or typed from a photo of the screen still matches.
ACCESS_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
ACCESS_CODE_LENGTH = 4
MAX_DESCRIPTION = 4000
MAX_COMMENT = 2000
# A street, a number and a reference point fit comfortably; anything longer is not an address.
MAX_ADDRESS = 300


def parse_reference(text: str) -> tuple[str, str | None]:
    """ "2026-000123-K7Q9" → ("2026-000123", "K7Q9"); a bare number has no code. Invalid text is invalid_argument."""
    match = _NUMBER.fullmatch((text or "").strip())
    if not match:
        raise DomainError("invalid_argument", "tools.error.invalid_protocol_number")
    return f"{match[1]}-{int(match[2]):06d}", match[3].upper() if match[3] else None


def normalize_number(text: str) -> str:
    """ "2026-000123", "2026000123", "2026-123" or "2026-000123-K7Q9" → "2026-000123"; else invalid_argument."""
    return parse_reference(text)[0]


def new_access_code() -> str:
    return "".join(secrets.choice(ACCESS_CODE_ALPHABET) for _ in range(ACCESS_CODE_LENGTH))


def access_code_hash(number: str, code: str) -> str:
    # Salted with the number, so one code's hash says nothing about another protocol with the same code.
    return hashlib.sha256(f"atende/protocol-access\x00{number}\x00{code.upper()}".encode()).hexdigest()


def code_opens(protocol: Protocol, code: str | None) -> bool:
    """Whether `code` is the protocol's access code (protocols opened before codes existed have none)."""
    if not code or protocol.access_code_hash is None:
        return False
    return hmac.compare_digest(access_code_hash(protocol.number, code), protocol.access_code_hash)


def local_iso(clock: Clock, value: datetime) -> str:
    """Timestamps go out in the body's local time, with their offset: what a citizen expects to read."""
    return clock.local(value).isoformat(timespec="seconds")


def resolve_service(session: Session, text: str, kind: str) -> ServiceEntry:
    """A service by code, name or alias, accent- and case-insensitively."""
    key = normalize_key(text or "")
    services = session.scalars(
        select(ServiceEntry).where(ServiceEntry.kind == kind, ServiceEntry.active.is_(True)).order_by(ServiceEntry.code)
    ).all()
    for service in services:
        if key in {service.code, normalize_key(service.name), *(normalize_key(a) for a in service.aliases)}:
            return service
    options = ", ".join(s.code for s in services)
    raise DomainError("invalid_argument", "tools.error.unknown_service", options=options)


@dataclass(frozen=True)
class ProtocolView:
    protocol: Protocol
    service_name: str
    history: list[ProtocolEvent]
    comments: list[ProtocolComment]
    access_code: str | None = None  # only right after opening: it is stored hashed

    @property
    def reference(self) -> str:
        """What the citizen keeps: the number with its access code, when there is one to give."""
        number = self.protocol.number
        return f"{number}-{self.access_code}" if self.access_code else number


class ProtocolQuota:
    """How many protocols one conversation may open per window (0: any number).

    A citizen needs no verification for an anonymous protocol, so without it a script could fill the teams'
    queues through the assistant. Staff and integrations are not counted here.
    """

    def __init__(self, limiter: RateLimiter, limit: int, window_s: float = 3600.0) -> None:
        self._limiter = limiter
        self.limit = limit
        self._window_s = window_s

    def take(self, conversation_id: str) -> None:
        if self.limit <= 0:
            return
        decision = self._limiter.hit(
            f"protocol:conversation:{conversation_id}", limit=self.limit, window_s=self._window_s
        )
        if not decision.allowed:
            minutes = max(1, math.ceil(decision.retry_after_s / 60))
            raise DomainError("rate_limited", "tools.error.protocol_quota", minutes=minutes)

    def give_back(self, conversation_id: str) -> None:
        """A protocol that was not opened after all (refused as invalid) does not count."""
        if self.limit > 0:
            self._limiter.refund(f"protocol:conversation:{conversation_id}")


class ProtocolBook:
    def __init__(self, session_factory: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = session_factory
        self._clock = clock

    def _next_number(self, session: Session, year: int) -> int:
        """One atomic upsert: the counter row stays locked until the opening transaction ends, so concurrent
        openings queue on it and a rolled-back opening gives its number back."""
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(ProtocolCounter)
            .values(year=year, last_value=1)
            .on_conflict_do_update(
                index_elements=[ProtocolCounter.year], set_={"last_value": ProtocolCounter.last_value + 1}
            )
            .returning(ProtocolCounter.last_value)
        )
        value: int = session.execute(statement).scalar_one()
        return value

    def open(
        self,
        *,
        service: str,
        description: str,
        address: str | None,
        citizen_id: int | None,
        anonymous: bool,
        actor: str,
        channel: str | None = None,
    ) -> ProtocolView:
        description = (description or "").strip()
        if not description:
            raise DomainError("invalid_argument", "tools.error.empty_description")
        if len(description) > MAX_DESCRIPTION:
            raise DomainError("invalid_argument", "tools.error.too_long", max=MAX_DESCRIPTION)
        address = (address or "").strip() or None
        if address is not None and len(address) > MAX_ADDRESS:
            raise DomainError("invalid_argument", "tools.error.address_too_long", max=MAX_ADDRESS)
        now = self._clock.now()
        today = self._clock.today()
        code = new_access_code()
        with self._sessions.begin() as session:
            entry = resolve_service(session, service, "protocol")
            seq = self._next_number(session, today.year)
            number = f"{today.year}-{seq:06d}"
            protocol = Protocol(
                number=number,
                service_code=entry.code,
                team=entry.team,
                citizen_id=None if anonymous else citizen_id,
                anonymous=anonymous,
                description=description,
                address=address,
                status="aberto",
                channel=channel,
                opened_at=now,
                updated_at=now,
                due_date=add_business_days(today, entry.sla_business_days),
                access_code_hash=access_code_hash(number, code),
            )
            session.add(protocol)
            session.flush()
            event = ProtocolEvent(protocol_id=protocol.id, status="aberto", note=None, actor=actor, at=now)
            session.add(event)
            return ProtocolView(protocol, entry.name, [event], [], access_code=code)

    def reissue_access_code(self, number: str) -> str:
        """A new access code for the protocol (the old one stops working): for staff helping a citizen who lost it."""
        code = new_access_code()
        with self._sessions.begin() as session:
            protocol = self._load(session, number)
            protocol.access_code_hash = access_code_hash(protocol.number, code)
        return code

    def record_contact_in(
        self,
        session: Session,
        *,
        description: str,
        citizen_id: int | None,
        team: str,
        actor: str,
        channel: str | None,
        note: str | None = None,
    ) -> Protocol:
        """A finished service contact, numbered like any protocol, inside the caller's transaction.

        It is opened and concluded at once (history `aberto`, `concluido`): the contact is over when it is
        recorded, and a demand that goes on has a protocol of its own. `citizen_id` None: nobody identified.
        """
        description = (description or "").strip()[:MAX_DESCRIPTION]
        if not description:
            raise DomainError("invalid_argument", "tools.error.empty_description")
        spec = CONTACT_SERVICE
        now = self._clock.now()
        today = self._clock.today()
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # The catalogue entry is the platform's own, so it is made on first use (no seed needed), race-free.
        session.execute(
            insert(ServiceEntry)
            .values(
                code=spec.code,
                name=spec.name,
                kind=spec.kind,
                team=spec.team,
                sla_business_days=spec.sla_business_days,
                aliases=list(spec.aliases),
                active=True,
            )
            .on_conflict_do_nothing(index_elements=[ServiceEntry.code])
        )
        seq = self._next_number(session, today.year)
        protocol = Protocol(
            number=f"{today.year}-{seq:06d}",
            service_code=spec.code,
            team=team,
            citizen_id=citizen_id,
            anonymous=False,
            description=description,
            address=None,
            status="concluido",
            channel=channel,
            opened_at=now,
            updated_at=now,
            due_date=today,
            closed_at=now,
        )
        session.add(protocol)
        session.flush()
        session.add_all(
            [
                ProtocolEvent(protocol_id=protocol.id, status="aberto", note=None, actor=actor, at=now),
                ProtocolEvent(protocol_id=protocol.id, status="concluido", note=note, actor=actor, at=now),
            ]
        )
        return protocol

    def _load(self, session: Session, number: str) -> Protocol:
        protocol = session.scalar(select(Protocol).where(Protocol.number == normalize_number(number)))
        if protocol is None:
            raise DomainError("not_found", "tools.error.protocol_not_found")
        return protocol

    def view(self, number: str) -> ProtocolView:
        with self._sessions() as session:
            protocol = self._load(session, number)
            service = session.get(ServiceEntry, protocol.service_code)
            history = session.scalars(
                select(ProtocolEvent).where(ProtocolEvent.protocol_id == protocol.id).order_by(ProtocolEvent.id)
            ).all()
            comments = session.scalars(
                select(ProtocolComment).where(ProtocolComment.protocol_id == protocol.id).order_by(ProtocolComment.id)
            ).all()
            return ProtocolView(
                protocol, service.name if service else protocol.service_code, list(history), list(comments)
            )

    def owner_of(self, number: str) -> int | None:
        with self._sessions() as session:
            return self._load(session, number).citizen_id

    def add_comment(self, number: str, text: str, *, author: str) -> ProtocolComment:
        text = (text or "").strip()
        if not text:
            raise DomainError("invalid_argument", "tools.error.empty_comment")
        if len(text) > MAX_COMMENT:
            raise DomainError("invalid_argument", "tools.error.too_long", max=MAX_COMMENT)
        with self._sessions.begin() as session:
            protocol = self._load(session, number)
            if protocol.status in ("concluido", "cancelado"):
                raise DomainError("conflict", "tools.error.protocol_closed")
            comment = ProtocolComment(protocol_id=protocol.id, author=author, text=text, created_at=self._clock.now())
            session.add(comment)
            protocol.updated_at = self._clock.now()
            session.flush()
            return comment

    def transition(self, number: str, status: str, *, actor: str, note: str | None = None) -> ProtocolView:
        if status not in STATUSES:
            raise DomainError("invalid_argument", "tools.error.unknown_status", options=", ".join(STATUSES))
        with self._sessions.begin() as session:
            # Row lock on PostgreSQL, so two staff moving the same protocol cannot both pass the check.
            protocol = session.scalar(
                select(Protocol).where(Protocol.number == normalize_number(number)).with_for_update()
            )
            if protocol is None:
                raise DomainError("not_found", "tools.error.protocol_not_found")
            if status not in TRANSITIONS[protocol.status]:
                raise DomainError("conflict", "tools.error.invalid_transition", current=protocol.status, target=status)
            now = self._clock.now()
            protocol.status = status
            protocol.updated_at = now
            if status in ("concluido", "cancelado"):
                protocol.closed_at = now
            session.add(ProtocolEvent(protocol_id=protocol.id, status=status, note=note, actor=actor, at=now))
        return self.view(number)

    def list_for(self, citizen_id: int, status: str | None = None) -> list[tuple[Protocol, str]]:
        if status is not None and status not in STATUSES:
            raise DomainError("invalid_argument", "tools.error.unknown_status", options=", ".join(STATUSES))
        query = (
            select(Protocol, ServiceEntry.name)
            .join(ServiceEntry, ServiceEntry.code == Protocol.service_code)
            .where(Protocol.citizen_id == citizen_id)
            .order_by(Protocol.opened_at.desc(), Protocol.id.desc())
        )
        if status is not None:
            query = query.where(Protocol.status == status)
        with self._sessions() as session:
            return [(p, name) for p, name in session.execute(query).all()]


def public_status(view: ProtocolView, clock: Clock) -> dict[str, Any]:
    """What anyone holding the number may see: no description, address, comments or staff notes."""
    p = view.protocol
    return {
        "number": p.number,
        "status": p.status,
        "service": p.service_code,
        "service_name": view.service_name,
        "team": p.team,
        "opened_at": local_iso(clock, p.opened_at),
        "due_date": p.due_date.isoformat(),
        "updated_at": local_iso(clock, p.updated_at),
        "anonymous": p.anonymous,
        "history": [{"status": e.status, "at": local_iso(clock, e.at), "note": None} for e in view.history],
    }


def owner_status(view: ProtocolView, clock: Clock) -> dict[str, Any]:
    """The owner's (or authorised staff's) view: adds what they wrote and the notes on each step."""
    out = public_status(view, clock)
    out["history"] = [{"status": e.status, "at": local_iso(clock, e.at), "note": e.note} for e in view.history]
    out["description"] = view.protocol.description
    out["address"] = view.protocol.address
    out["comments"] = [
        {
            "comment_id": str(c.id),
            "author": c.author.split(":", 1)[0],
            "text": c.text,
            "created_at": local_iso(clock, c.created_at),
        }
        for c in view.comments
    ]
    return out

"""The consent register: opt-ins and opt-outs per citizen, channel and purpose, with their full history.

Rows are only ever added; the current state of a (citizen, channel, purpose) is its latest row. An opt-out with
purpose "*" (e.g. the WhatsApp keyword SAIR) covers every purpose on that channel until a later, specific
opt-in. Outbound messaging asks `ConsentRegister.is_opted_in` before each send.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.audit import AuditEvent, AuditSink
from core.lgpd.models import ConsentRecord
from core.models import utcnow
from core.privacy import mask

__all__ = [
    "ALL_PURPOSES",
    "DEFAULT_OPT_IN",
    "KNOWN_PURPOSES",
    "ConsentEntry",
    "ConsentRegister",
    "ConsentStatus",
]

ConsentStatus = Literal["opt_in", "opt_out"]
STATUSES: Final = frozenset(get_args(ConsentStatus))
ALL_PURPOSES: Final = "*"
KNOWN_PURPOSES: Final = ("atendimento", "campanhas", "pesquisa_satisfacao")
# Answering a citizen about a request they made themselves rests on the public body's duty to serve them, not
# on consent (LGPD art. 7, III and art. 23), so it is allowed until they opt out. Everything else needs an opt-in.
DEFAULT_OPT_IN: Final = {"atendimento": True}
_SLUG = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    id: int
    citizen_ref: str
    channel: str
    purpose: str
    status: ConsentStatus
    source: str
    actor: str
    recorded_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "citizen_ref": self.citizen_ref,
            "channel": self.channel,
            "purpose": self.purpose,
            "status": self.status,
            "source": self.source,
            "actor": self.actor,
            "recorded_at": self.recorded_at.isoformat(),
        }


def _entry(row: ConsentRecord) -> ConsentEntry:
    return ConsentEntry(
        id=row.id,
        citizen_ref=row.citizen_ref,
        channel=row.channel,
        purpose=row.purpose,
        status=row.status,  # type: ignore[arg-type]
        source=row.source,
        actor=row.actor,
        recorded_at=row.recorded_at,
    )


def _check(channel: str, purpose: str, status: str, citizen_ref: str, source: str) -> None:
    if not citizen_ref or len(citizen_ref) > 255:
        raise ValueError("citizen_ref must have 1 to 255 characters")
    if not _SLUG.fullmatch(channel):
        raise ValueError(f"channel {channel!r} must be a lower-case slug")
    if purpose != ALL_PURPOSES and not _SLUG.fullmatch(purpose):
        raise ValueError(f"purpose {purpose!r} must be a lower-case slug or '*'")
    if status not in STATUSES:
        raise ValueError(f"status {status!r} must be one of {sorted(STATUSES)}")
    if not source.strip() or len(source) > 255:
        raise ValueError("source must have 1 to 255 characters")


class ConsentRegister:
    """Records consent changes (each one audited) and answers whether a message may be sent."""

    def __init__(
        self, sessions: sessionmaker[Session], audit: AuditSink, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._clock = clock

    def record(
        self,
        citizen_ref: str,
        channel: str,
        purpose: str,
        status: ConsentStatus,
        source: str,
        *,
        actor: str = "system",
        ip: str | None = None,
        user_agent: str | None = None,
        at: datetime | None = None,
    ) -> ConsentEntry:
        """Add one opt-in or opt-out. `source` says how it was given: "whatsapp:keyword SAIR", "web:form",
        "staff:user:7"; `at` is when the citizen gave it (default: now)."""
        _check(channel, purpose, status, citizen_ref, source)
        if at is not None and at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        with self._sessions.begin() as session:
            row = ConsentRecord(
                citizen_ref=citizen_ref,
                channel=channel,
                purpose=purpose,
                status=status,
                source=mask(source),
                actor=actor[:255],
                recorded_at=at or self._clock(),
            )
            session.add(row)
            session.flush()
            entry = _entry(row)
        self._audit.record(
            AuditEvent(
                actor=actor,
                action=f"consent.{status}",
                object_type="consent",
                object_id=str(entry.id),
                ip=ip,
                user_agent=user_agent,
                details={"channel": channel, "purpose": purpose, "source": entry.source},
                subject=citizen_ref,
            )
        )
        return entry

    def history(self, citizen_ref: str) -> list[ConsentEntry]:
        """Every consent change of this citizen, oldest first."""
        stmt = (
            select(ConsentRecord)
            .where(ConsentRecord.citizen_ref == citizen_ref)
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        )
        with self._sessions() as session:
            return [_entry(row) for row in session.scalars(stmt)]

    def current(self, citizen_ref: str) -> list[ConsentEntry]:
        """The latest entry per (channel, purpose), ordered by channel and purpose."""
        latest: dict[tuple[str, str], ConsentEntry] = {}
        for entry in self.history(citizen_ref):
            latest[(entry.channel, entry.purpose)] = entry
        return [latest[key] for key in sorted(latest)]

    def is_opted_in(self, citizen_ref: str, channel: str, purpose: str) -> bool:
        """Whether a message for `purpose` may be sent to this citizen on `channel` now."""
        stmt = (
            select(ConsentRecord.status)
            .where(
                ConsentRecord.citizen_ref == citizen_ref,
                ConsentRecord.channel == channel,
                or_(ConsentRecord.purpose == purpose, ConsentRecord.purpose == ALL_PURPOSES),
            )
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
            .limit(1)
        )
        with self._sessions() as session:
            status = session.scalar(stmt)
        if status is None:
            return DEFAULT_OPT_IN.get(purpose, False)
        return status == "opt_in"

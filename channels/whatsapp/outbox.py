"""The durable outbox: what to send, in which order, how often it was tried, and what Meta said about it.

Delivery statuses arrive out of order and more than once; a status only ever moves a message forward
(`STATUS_RANK`), so the final state is the same whatever order they came in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from channels.whatsapp.contacts import ContactView, contact_view
from channels.whatsapp.models import ContactRow, OutboxRow
from channels.whatsapp.payloads import StatusUpdate
from conversation.inbox import insert_ignoring_duplicates
from core.models import Event, utcnow

# "failed" outranks "sent" (it is reported after it) but not "delivered": a message that reached the phone did.
STATUS_RANK: Final = {"queued": 0, "sending": 0, "accepted": 1, "sent": 2, "failed": 3, "delivered": 4, "read": 5}
IN_FLIGHT: Final = ("queued", "sending")
OPAQUE_PREFIX: Final = "atende:"


@dataclass(frozen=True, slots=True)
class OutboundDraft:
    """One message to enqueue: its idempotency key and the Graph API body without the recipient."""

    key: str
    body: dict[str, Any]
    purpose: str | None = None

    @property
    def kind(self) -> str:
        return str(self.body["type"])


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    phone_number_id: str
    contact: ContactView
    conversation_id: str | None
    campaign_id: int | None
    kind: str
    body: dict[str, Any]
    purpose: str | None
    attempts: int

    @property
    def opaque(self) -> str:
        return f"{OPAQUE_PREFIX}{self.id}"


def _failure_event(session: Session, row: OutboxRow, now: datetime) -> None:
    if row.conversation_id is None:
        return
    session.add(
        Event(
            conversation_id=row.conversation_id,
            kind="whatsapp_delivery_failed",
            payload={"outbox_id": row.id, "error_code": row.error_code, "error_title": row.error_title},
            created_at=now,
        )
    )


class Outbox:
    def __init__(
        self, engine: Engine, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._postgres = engine.dialect.name == "postgresql"
        self._insert_once = insert_ignoring_duplicates(engine, OutboxRow.__table__, ["key"])

    # Enqueue

    def add(
        self,
        session: Session,
        contact: ContactView,
        drafts: Sequence[OutboundDraft],
        *,
        conversation_id: str | None,
        campaign_id: int | None = None,
    ) -> list[int]:
        """Enqueue inside the caller's transaction. A key that exists raises IntegrityError, which must roll
        the whole transaction back: that is what makes a reply happen once."""
        now = self._clock()
        rows = [
            OutboxRow(
                key=draft.key,
                phone_number_id=contact.phone_number_id,
                contact_id=contact.id,
                conversation_id=conversation_id,
                campaign_id=campaign_id,
                kind=draft.kind,
                body=draft.body,
                purpose=draft.purpose,
                status="queued",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                status_at=now,
            )
            for draft in drafts
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]

    def add_once(
        self, session: Session, contact: ContactView, draft: OutboundDraft, *, campaign_id: int | None = None
    ) -> int:
        """Enqueue unless the key exists; returns the row id either way."""
        now = self._clock()
        session.execute(
            self._insert_once,
            [
                {
                    "key": draft.key,
                    "phone_number_id": contact.phone_number_id,
                    "contact_id": contact.id,
                    "conversation_id": contact.conversation_id,
                    "campaign_id": campaign_id,
                    "kind": draft.kind,
                    "body": draft.body,
                    "purpose": draft.purpose,
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "status_at": now,
                }
            ],
        )
        row_id = session.scalar(select(OutboxRow.id).where(OutboxRow.key == draft.key))
        assert row_id is not None
        return row_id

    # Sending

    def claim_due(self, owner: str, *, limit: int, lease_s: float) -> list[OutboxItem]:
        """Lease due messages, at most one per citizen: a citizen's messages go out one after another, in order."""
        now = self._clock()
        earlier = aliased(OutboxRow)
        blocked = exists().where(
            earlier.contact_id == OutboxRow.contact_id, earlier.id < OutboxRow.id, earlier.status.in_(IN_FLIGHT)
        )
        due = or_(
            and_(OutboxRow.status == "queued", OutboxRow.next_attempt_at <= now),
            and_(OutboxRow.status == "sending", OutboxRow.lease_until < now),
        )
        ids = select(OutboxRow.id).where(due, ~blocked).order_by(OutboxRow.id).limit(limit)
        if self._postgres:
            ids = ids.with_for_update(skip_locked=True)
        with self._sessions.begin() as session:
            claimed = session.scalars(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids.scalar_subquery()))
                .values(status="sending", lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
                .returning(OutboxRow.id)
            ).all()
            if not claimed:
                return []
            rows = session.execute(
                select(OutboxRow, ContactRow)
                .join(ContactRow, ContactRow.id == OutboxRow.contact_id)
                .where(OutboxRow.id.in_(claimed))
                .order_by(OutboxRow.id)
            ).all()
            return [
                OutboxItem(
                    id=o.id,
                    key=o.key,
                    phone_number_id=o.phone_number_id,
                    contact=contact_view(c),
                    conversation_id=o.conversation_id,
                    campaign_id=o.campaign_id,
                    kind=o.kind,
                    body=dict(o.body),
                    purpose=o.purpose,
                    attempts=o.attempts,
                )
                for o, c in rows
            ]

    def accepted(self, item_id: int, wamid: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(OutboxRow, item_id, with_for_update=True)
            if row is None:
                return
            row.wamid = wamid
            row.lease_owner = row.lease_until = None
            # A status webhook may have overtaken the API's answer (matched by the opaque data): keep it.
            if STATUS_RANK[row.status] < STATUS_RANK["accepted"]:
                row.status = "accepted"
                row.status_at = self._clock()

    def retry(self, item_id: int, *, delay_s: float, code: str | None, title: str | None) -> None:
        """Try again after `delay_s`, counting an attempt."""
        self._requeue(item_id, delay_s, counted=True, code=code, title=title)

    def defer(self, item_id: int, *, delay_s: float) -> None:
        """Try again after `delay_s` without counting an attempt (pacing, not failure)."""
        self._requeue(item_id, delay_s, counted=False)

    def _requeue(
        self, item_id: int, delay_s: float, *, counted: bool, code: str | None = None, title: str | None = None
    ) -> None:
        values: dict[str, Any] = {
            "status": "queued",
            "lease_owner": None,
            "lease_until": None,
            "next_attempt_at": self._clock() + timedelta(seconds=max(0.0, delay_s)),
        }
        if counted:
            values.update(attempts=OutboxRow.attempts + 1, error_code=code, error_title=title)
        with self._sessions.begin() as session:
            session.execute(
                update(OutboxRow).where(OutboxRow.id == item_id, OutboxRow.status == "sending").values(values)
            )

    def fail(self, item_id: int, *, code: str, title: str, counted: bool = True) -> None:
        """Give up on a message: the failure is recorded with its code and shown to staff."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(OutboxRow, item_id, with_for_update=True)
            if row is None or row.status not in IN_FLIGHT:
                return
            row.status = "failed"
            row.status_at = now
            row.error_code = code[:32]
            row.error_title = title
            row.lease_owner = row.lease_until = None
            if counted:
                row.attempts += 1
            _failure_event(session, row, now)

    # Delivery statuses

    def apply_status(self, session: Session, update_: StatusUpdate) -> str | None:
        """Apply one webhook status inside the caller's transaction.

        Returns None when no message matches yet (the send's answer may not be committed), else what happened:
        "applied", "stale" (an older status than the one recorded) or "ignored" (a status we do not track).
        """
        row = session.scalars(select(OutboxRow).where(OutboxRow.wamid == update_.wamid).with_for_update()).first()
        if row is None and update_.opaque and update_.opaque.startswith(OPAQUE_PREFIX):
            suffix = update_.opaque.removeprefix(OPAQUE_PREFIX)
            if suffix.isdigit():
                row = session.get(OutboxRow, int(suffix), with_for_update=True)
                if row is not None and row.wamid not in (None, update_.wamid):
                    row = None
        if row is None:
            return None
        if update_.status not in ("sent", "delivered", "read", "failed"):
            return "ignored"
        if row.wamid is None:
            row.wamid = update_.wamid
        if STATUS_RANK[update_.status] <= STATUS_RANK[row.status]:
            return "stale"
        row.status = update_.status
        row.status_at = update_.at
        row.lease_owner = row.lease_until = None
        if update_.status == "failed":
            error: Mapping[str, Any] = update_.errors[0] if update_.errors else {}
            row.error_code = str(error.get("code", "unknown"))[:32]
            details = (error.get("error_data") or {}).get("details")
            row.error_title = " — ".join(str(x) for x in (error.get("title"), details) if x) or None
            _failure_event(session, row, self._clock())
        return "applied"

    # Reading

    def status_counts(self, *, campaign_id: int | None = None) -> dict[str, int]:
        stmt = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        if campaign_id is not None:
            stmt = stmt.where(OutboxRow.campaign_id == campaign_id)
        with self._sessions() as session:
            return {status: int(n) for status, n in session.execute(stmt).all()}

    def failures(self, limit: int = 100) -> list[dict[str, Any]]:
        """Failed messages, newest first, for staff: error code and title, conversation, when."""
        stmt = select(OutboxRow).where(OutboxRow.status == "failed").order_by(OutboxRow.id.desc()).limit(limit)
        with self._sessions() as session:
            return [
                {
                    "id": r.id,
                    "conversation_id": r.conversation_id,
                    "campaign_id": r.campaign_id,
                    "kind": r.kind,
                    "error_code": r.error_code,
                    "error_title": r.error_title,
                    "attempts": r.attempts,
                    "failed_at": r.status_at.isoformat(),
                }
                for r in session.scalars(stmt)
            ]

    def find(self, key: str) -> dict[str, Any] | None:
        with self._sessions() as session:
            row = session.scalars(select(OutboxRow).where(OutboxRow.key == key)).first()
            return None if row is None else _summary(row)

    def find_by_id(self, item_id: int) -> dict[str, Any]:
        with self._sessions() as session:
            row = session.get(OutboxRow, item_id)
            if row is None:
                raise LookupError(f"no outbox message {item_id}")
            return _summary(row)


def _summary(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "wamid": row.wamid,
        "attempts": row.attempts,
        "error_code": row.error_code,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "body": row.body,
    }

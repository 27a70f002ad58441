"""The audit trail boundary: every staff action and every read of a citizen's personal data is recorded.

`AuditSink` is what the rest of the code calls; `AuditLog` is the persistent implementation. Its records form a
hash chain: each one carries the previous record's hash and an HMAC-SHA256 over its own canonical JSON, keyed
with a key derived from ATENDE_SECRET_KEY, so an edited, inserted or deleted row is found by `verify()` and
someone with database access alone cannot recompute the chain (docs/decisions/0020-audit-trail.md).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Final, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.lgpd.crypto import derive_key
from core.lgpd.models import CHAIN_HEAD_ID, GENESIS_HASH, AuditChainHead, AuditEntry
from core.models import utcnow
from core.privacy import mask_data

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditQuery",
    "AuditRecord",
    "AuditSink",
    "ChainKeys",
    "MemoryAuditSink",
    "VerifyResult",
    "iter_csv",
    "write_csv",
    "write_xlsx",
]


@dataclass(frozen=True)
class AuditEvent:
    """Who did what to which object. `actor` reads like "user:42", "integration:ouvidoria",
    "citizen:<conversation id>" or "system". `subject` names the citizen whose personal data was touched
    ("citizen:<id>" or a conversation's `citizen_ref`), so "who saw this citizen's data" is one query."""

    actor: str
    action: str  # dotted verb, e.g. "citizen.verify", "citizen.read", "user.login_failed"
    object_type: str
    object_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None


class AuditSink(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class MemoryAuditSink:
    """Keeps events in a list: for unit tests of code that must audit."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]


# --- the persistent, hash-chained log -----------------------------------------------------------------

DEFAULT_TIMEZONE: Final = "America/Sao_Paulo"
_LIMITS: Final = {"actor": 255, "action": 64, "object_type": 64, "object_id": 255, "subject": 255, "ip": 64}
_USER_AGENT_LIMIT: Final = 512


@dataclass(frozen=True)
class AuditRecord:
    sequence: int
    occurred_at: datetime  # UTC
    actor: str
    action: str
    object_type: str
    object_id: str | None
    subject: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    key_id: str
    prev_hash: str
    hash: str

    def local_time(self, zone: str = DEFAULT_TIMEZONE) -> datetime:
        return self.occurred_at.astimezone(ZoneInfo(zone))

    def as_dict(self, zone: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.isoformat(),
            "occurred_at_local": self.local_time(zone).isoformat(),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "subject": self.subject,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditQuery:
    """Filters for `AuditLog.search`; every given field must match exactly, times are `since <= t < until`."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    first_broken: int | None = None
    reason: str = ""

    def summary(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} records; head {self.head_sequence} {self.head_hash}"
        return f"audit chain BROKEN at record {self.first_broken}: {self.reason} ({self.checked} records checked)"


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"atende/audit-key-id\x00" + key).hexdigest()[:16]


class ChainKeys:
    """The HMAC key new records are signed with, plus former keys that still verify older records."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self.current = current
        self.current_id = _key_id(current)
        self._by_id = {_key_id(key): key for key in (*previous, current)}

    @classmethod
    def from_secrets(cls, secret: str, previous: Sequence[str] = ()) -> ChainKeys:
        return cls(derive_key(secret, "audit-chain"), [derive_key(s, "audit-chain") for s in previous])

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainKeys:
        previous = [s.strip() for s in settings.audit_previous_secret_keys.get_secret_value().split(",") if s.strip()]
        return cls.from_secrets(settings.secret_key.get_secret_value(), previous)

    def key(self, key_id: str) -> bytes | None:
        return self._by_id.get(key_id)


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _canonical(values: dict[str, Any]) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _hashed_fields(row: AuditEntry | dict[str, Any]) -> dict[str, Any]:
    get: Callable[[str], Any] = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return {
        "sequence": get("sequence"),
        # Microseconds spelled out: both databases keep them, and the text must be identical after a round trip.
        "occurred_at": get("occurred_at").isoformat(timespec="microseconds"),
        "actor": get("actor"),
        "action": get("action"),
        "object_type": get("object_type"),
        "object_id": get("object_id"),
        "subject": get("subject"),
        "ip": get("ip"),
        "user_agent": get("user_agent"),
        "details": get("details"),
        "key_id": get("key_id"),
        "prev_hash": get("prev_hash"),
    }


def _sign(key: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(key, _canonical(fields), hashlib.sha256).hexdigest()


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        sequence=row.sequence,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        subject=row.subject,
        ip=row.ip,
        user_agent=row.user_agent,
        details=dict(row.details),
        key_id=row.key_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    """The append-only, hash-chained audit trail in the application database (SQLite or PostgreSQL).

    Appends serialise on the single chain-head row: the first statement of each append is an UPDATE of that
    row, which takes PostgreSQL's row lock or SQLite's write lock before anything is read, so concurrent
    appenders queue instead of forking the chain. Each append is its own short transaction.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        keys: ChainKeys,
        *,
        clock: Callable[[], datetime] = utcnow,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._clock = clock
        self.timezone = timezone

    def record(self, event: AuditEvent) -> None:
        self.append(event)

    def append(self, event: AuditEvent) -> AuditRecord:
        # Masked, then made plain JSON, before hashing: the stored details must be exactly what was hashed.
        details = json.loads(json.dumps(mask_data(event.details), default=str, allow_nan=False))
        occurred_at = self._clock()
        if occurred_at.tzinfo is None:
            raise ValueError("the audit clock must return timezone-aware datetimes")
        with self._sessions.begin() as session:
            claimed = session.execute(
                update(AuditChainHead)
                .where(AuditChainHead.id == CHAIN_HEAD_ID)
                .values(sequence=AuditChainHead.sequence + 1)
                .returning(AuditChainHead.sequence, AuditChainHead.hash)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if claimed is None:
                raise RuntimeError("audit chain head is missing; run the migrations (core.migrate.upgrade)")
            sequence, prev_hash = claimed
            fields: dict[str, Any] = {
                "sequence": sequence,
                "occurred_at": occurred_at,
                "actor": _clip(event.actor, _LIMITS["actor"]) or "unknown",
                "action": _clip(event.action, _LIMITS["action"]),
                "object_type": _clip(event.object_type, _LIMITS["object_type"]),
                "object_id": _clip(event.object_id, _LIMITS["object_id"]),
                "subject": _clip(event.subject, _LIMITS["subject"]),
                "ip": _clip(event.ip, _LIMITS["ip"]),
                "user_agent": _clip(event.user_agent, _USER_AGENT_LIMIT),
                "details": details,
                "key_id": self._keys.current_id,
                "prev_hash": prev_hash,
            }
            digest = _sign(self._keys.current, _hashed_fields(fields))
            row = AuditEntry(**fields, hash=digest)
            session.add(row)
            session.flush()
            session.execute(
                update(AuditChainHead)
                .where(AuditChainHead.id == CHAIN_HEAD_ID)
                .values(hash=digest)
                .execution_options(synchronize_session=False)
            )
            return _record(row)

    def head(self) -> tuple[int, str]:
        with self._sessions() as session:
            row = session.get(AuditChainHead, CHAIN_HEAD_ID)
            if row is None:
                raise RuntimeError("audit chain head is missing; run the migrations (core.migrate.upgrade)")
            return row.sequence, row.hash

    def verify(self, *, batch_size: int = 1000) -> VerifyResult:
        """Walk the chain from the first record; report the first record that is missing, altered or forged."""
        head_sequence, head_hash = self.head()
        expected_sequence, expected_prev, checked = 1, GENESIS_HASH, 0

        def broken(sequence: int, reason: str) -> VerifyResult:
            return VerifyResult(False, checked, head_sequence, head_hash, sequence, reason)

        while expected_sequence <= head_sequence:
            stmt = (
                select(AuditEntry)
                .where(AuditEntry.sequence >= expected_sequence, AuditEntry.sequence <= head_sequence)
                .order_by(AuditEntry.sequence)
                .limit(batch_size)
            )
            with self._sessions() as session:
                rows = list(session.scalars(stmt))
            if not rows:
                return broken(expected_sequence, "record is missing (deleted)")
            for row in rows:
                if row.sequence != expected_sequence:
                    return broken(expected_sequence, "record is missing (deleted)")
                if row.prev_hash != expected_prev:
                    return broken(row.sequence, "previous-hash link does not match the record before it")
                key = self._keys.key(row.key_id)
                if key is None:
                    return broken(row.sequence, f"signed with an unknown key ({row.key_id})")
                if not hmac.compare_digest(_sign(key, _hashed_fields(row)), row.hash):
                    return broken(row.sequence, "content does not match its hash (edited)")
                expected_prev = row.hash
                expected_sequence += 1
                checked += 1
        if expected_prev != head_hash:
            return broken(head_sequence, "chain head does not match the last record")
        return VerifyResult(True, checked, head_sequence, head_hash)

    def search(
        self, query: AuditQuery | None = None, *, limit: int = 100, before: int | None = None
    ) -> list[AuditRecord]:
        """Matching records, newest first; pass the last sequence you got as `before` for the next page."""
        stmt = self._filtered(query or AuditQuery()).order_by(AuditEntry.sequence.desc()).limit(limit)
        if before is not None:
            stmt = stmt.where(AuditEntry.sequence < before)
        with self._sessions() as session:
            return [_record(row) for row in session.scalars(stmt)]

    def iter_records(self, query: AuditQuery | None = None, *, batch_size: int = 1000) -> Iterator[AuditRecord]:
        """Every matching record, oldest first, read in batches (for exports)."""
        query = query or AuditQuery()
        after = 0
        while True:
            stmt = (
                self._filtered(query).where(AuditEntry.sequence > after).order_by(AuditEntry.sequence).limit(batch_size)
            )
            with self._sessions() as session:
                batch = [_record(row) for row in session.scalars(stmt)]
            yield from batch
            if len(batch) < batch_size:
                return
            after = batch[-1].sequence

    @staticmethod
    def _filtered(query: AuditQuery) -> Any:
        stmt = select(AuditEntry)
        for name in ("actor", "action", "object_type", "object_id", "subject"):
            value = getattr(query, name)
            if value is not None:
                stmt = stmt.where(getattr(AuditEntry, name) == value)
        for name, value in (("since", query.since), ("until", query.until)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
        if query.since is not None:
            stmt = stmt.where(AuditEntry.occurred_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(AuditEntry.occurred_at < query.until)
        return stmt


# --- exports ------------------------------------------------------------------------------------------

EXPORT_COLUMNS: Final = (
    "sequence",
    "occurred_at_local",
    "actor",
    "action",
    "object_type",
    "object_id",
    "subject",
    "ip",
    "user_agent",
    "details",
    "prev_hash",
    "hash",
)
_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")


def _export_row(record: AuditRecord, zone: str) -> list[Any]:
    values = record.as_dict(zone)
    values["details"] = json.dumps(values["details"], ensure_ascii=False, sort_keys=True)
    return [values[name] for name in EXPORT_COLUMNS]


def _csv_safe(value: Any) -> Any:
    # A user agent or an object id is attacker-controlled text; a spreadsheet must not run it as a formula.
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


class _Pending:
    """A text sink for csv.writer that hands over what was written since the last call."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def take(self) -> str:
        chunk, self.parts = "".join(self.parts), []
        return chunk


def iter_csv(
    records: Iterable[AuditRecord], *, zone: str = DEFAULT_TIMEZONE, rows_per_chunk: int = 500
) -> Iterator[str]:
    """The CSV export as text chunks, header first, for streaming responses."""
    pending = _Pending()
    writer = csv.writer(pending, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for record in records:
        writer.writerow([_csv_safe(value) for value in _export_row(record, zone)])
        if len(pending.parts) >= rows_per_chunk:
            yield pending.take()
    yield pending.take()


def write_csv(records: Iterable[AuditRecord], out: IO[str], *, zone: str = DEFAULT_TIMEZONE) -> int:
    """Write records as CSV (times in `zone`); return how many were written."""
    count = 0

    def counted() -> Iterator[AuditRecord]:
        nonlocal count
        for record in records:
            count += 1
            yield record

    for chunk in iter_csv(counted(), zone=zone):
        out.write(chunk)
    return count


def write_xlsx(records: Iterable[AuditRecord], out: IO[bytes], *, zone: str = DEFAULT_TIMEZONE) -> int:
    """Write records as an XLSX workbook (times in `zone`, as text); return how many were written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("auditoria")
    sheet.append(list(EXPORT_COLUMNS))
    count = 0
    for record in records:
        cells = []
        for value in _export_row(record, zone):
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
            cells.append(cell)
        sheet.append(cells)
        count += 1
    workbook.save(out)
    return count

"""The durable inbox of every channel: what a channel received is written here first, exactly once.

A webhook's only write is a batch of inbox rows; workers then take leases on them. A synchronous channel (the web
chat) writes its row when a message arrives and finishes it with the reply, so a retried send finds the reply
instead of asking again.

`InboxWriter` groups the rows of concurrent webhook calls into one transaction (group commit): each call still
returns only after its own rows are committed, but under load one commit serves many calls
(docs/decisions/0024-durable-inbox.md).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Insert, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from conversation.models import InboxRow
from core.models import utcnow

log = logging.getLogger(__name__)


def insert_ignoring_duplicates(engine: Engine, table: Any, keys: Sequence[str]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING on the unique `keys`, in the engine's dialect."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(keys))


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One thing a channel received: `key` is unique within the channel (a message id, a status and its id)."""

    channel: str
    key: str
    kind: str  # message | status | other
    account: str | None
    payload: dict[str, Any]


def _rows(items: Sequence[InboxItem], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "channel": item.channel,
            "key": item.key[:255],
            "kind": item.kind,
            "account": item.account,
            "payload": item.payload,
            "received_at": now,
            "state": "pending",
            "attempts": 0,
        }
        for item in items
    ]


class _Waiter:
    """Tells one webhook call that its rows are committed (or why not), from the writer thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self._event = threading.Event()
        self.error: BaseException | None = None

    def resolve(self, error: BaseException | None) -> None:
        self.error = error
        if self._loop is not None and self._future is not None:
            self._loop.call_soon_threadsafe(self._settle)
        else:
            self._event.set()

    def _settle(self) -> None:
        assert self._future is not None
        if self._future.done():
            return
        if self.error is None:
            self._future.set_result(None)
        else:
            self._future.set_exception(self.error)

    async def wait_async(self) -> None:
        assert self._future is not None
        await self._future

    def wait(self) -> None:
        self._event.wait()
        if self.error is not None:
            raise self.error


_STOP = object()


class InboxWriter:
    """Inserts webhook items, ignoring redeliveries, with one transaction per batch of concurrent calls."""

    def __init__(self, engine: Engine, *, max_batch: int = 512, on_commit: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._insert = insert_ignoring_duplicates(engine, InboxRow.__table__, ["channel", "key"])

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wa-inbox-writer", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(10)

    async def write_async(self, items: Sequence[InboxItem]) -> None:
        """Return once the items are committed; raises what the database raised."""
        if not items:
            return
        self.start()
        waiter = _Waiter(asyncio.get_running_loop())
        self._queue.put((_rows(items, utcnow()), waiter))
        await waiter.wait_async()

    def write(self, items: Sequence[InboxItem]) -> None:
        """The blocking form, for callers without an event loop."""
        if not items:
            return
        self.start()
        waiter = _Waiter(None)
        self._queue.put((_rows(items, utcnow()), waiter))
        waiter.wait()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is _STOP:
                    stop = True
                    break
                batch.append(extra)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[list[dict[str, Any]], _Waiter]]) -> None:
        try:
            self._execute([row for rows, _ in batch for row in rows])
        except Exception:
            # One bad call must not fail the others: retry them one by one.
            for rows, waiter in batch:
                try:
                    self._execute(rows)
                except Exception as exc:
                    log.exception("inbox write failed: %s", exc)
                    waiter.resolve(exc)
                else:
                    waiter.resolve(None)
        else:
            for _, waiter in batch:
                waiter.resolve(None)
        if self._on_commit is not None:
            self._on_commit()

    def _execute(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as connection:
            connection.execute(self._insert, rows)


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Received:
    """What `Inbox.receive` found: the row to answer (`id`), the reply already given, or that it is being answered."""

    id: int | None
    reply: dict[str, Any] | None = None
    busy: bool = False


class AlreadyProcessed(Exception):
    """Another worker finished this inbox row first; whatever this one did must be rolled back."""


class Inbox:
    """Leases on inbox rows: a worker that dies leaves its rows to be claimed again after the lease."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def claim(
        self, owner: str, *, channel: str, limit: int, lease_s: float, kinds: Sequence[str] | None = None
    ) -> list[ClaimedItem]:
        """Lease up to `limit` due rows of `channel`, oldest first, in one statement (so two workers never share a
        row)."""
        now = self._clock()
        due = and_(
            InboxRow.channel == channel,
            InboxRow.state == "pending",
            or_(InboxRow.not_before.is_(None), InboxRow.not_before <= now),
            or_(InboxRow.lease_until.is_(None), InboxRow.lease_until < now),
        )
        if kinds:
            due = and_(due, InboxRow.kind.in_(list(kinds)))
        with self._sessions.begin() as session:
            ids = select(InboxRow.id).where(due).order_by(InboxRow.id).limit(limit)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                ids = ids.with_for_update(skip_locked=True)
            stmt = (
                update(InboxRow)
                .where(InboxRow.id.in_(ids.scalar_subquery()))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s), attempts=InboxRow.attempts + 1)
                .returning(
                    InboxRow.id,
                    InboxRow.key,
                    InboxRow.kind,
                    InboxRow.payload,
                    InboxRow.attempts,
                    InboxRow.received_at,
                )
            )
            rows = session.execute(stmt).all()
        items = [
            ClaimedItem(
                id=r.id, key=r.key, kind=r.kind, payload=r.payload, attempts=r.attempts, received_at=r.received_at
            )
            for r in rows
        ]
        return sorted(items, key=lambda item: item.id)

    def receive(self, item: InboxItem, *, conversation_id: str, owner: str, lease_s: float) -> Received:
        """Store an item a channel answers at once (the web chat), leased to `owner` while it is answered.

        A retried send of the same item finds the reply it was given, or that it is still being answered; one
        whose answering died with its process (the lease ran out) is taken over.
        """
        now = self._clock()
        until = now + timedelta(seconds=lease_s)
        row = {**_rows([item], now)[0], "lease_owner": owner, "lease_until": until}
        row.update(attempts=1, conversation_id=conversation_id)
        with self._sessions.begin() as session:
            bind = session.get_bind()
            stmt = insert_ignoring_duplicates(bind.engine, InboxRow.__table__, ["channel", "key"]).values(row)
            new_id = session.execute(stmt.returning(InboxRow.id)).scalar()
            if new_id is not None:
                return Received(new_id)
            held = session.scalars(
                select(InboxRow).where(InboxRow.channel == item.channel, InboxRow.key == row["key"]).with_for_update()
            ).one()
            if held.state == "done":
                return Received(None, reply=held.reply)
            if held.lease_until is not None and held.lease_until > now:
                return Received(None, busy=True)
            held.lease_owner, held.lease_until, held.attempts = owner, until, held.attempts + 1
            return Received(held.id)

    def release(self, item_id: int) -> None:
        """Give up the lease on a row left unanswered (the citizen went away mid-answer): a retry takes it at once."""
        with self._sessions.begin() as session:
            session.execute(
                update(InboxRow).where(InboxRow.id == item_id, InboxRow.state == "pending").values(lease_until=None)
            )

    def finish(self, session: Session, item_id: int, result: str, *, reply: dict[str, Any] | None = None) -> None:
        """Mark the row done inside the caller's transaction; raises AlreadyProcessed if it already was.

        The payload goes with it: once processed, only the key is needed (to ignore redeliveries), and the
        inbox should not keep a second copy of the citizen's messages and phone number (LGPD minimisation).
        """
        done = session.execute(
            update(InboxRow)
            .where(InboxRow.id == item_id, InboxRow.state == "pending")
            .values(
                state="done",
                processed_at=self._clock(),
                result=result[:64],
                payload={},
                reply=reply,
                lease_owner=None,
                lease_until=None,
            )
        )
        if cast(CursorResult[Any], done).rowcount != 1:
            raise AlreadyProcessed(item_id)

    def complete(self, item_id: int, result: str) -> None:
        with self._sessions.begin() as session:
            self.finish(session, item_id, result)

    def retry_later(self, item_id: int, *, delay_s: float, error: str, dead: bool = False) -> None:
        """Give the row back after `delay_s`, or set it aside as dead (surfaced to staff) when `dead`."""
        values: dict[str, Any] = {"error": error[:2000], "lease_owner": None, "lease_until": None}
        if dead:
            values.update(state="dead", processed_at=self._clock())
        else:
            values["not_before"] = self._clock() + timedelta(seconds=delay_s)
        with self._sessions.begin() as session:
            session.execute(update(InboxRow).where(InboxRow.id == item_id, InboxRow.state == "pending").values(values))

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(select(InboxRow.state, func.count()).group_by(InboxRow.state)).all()
        return {state: int(n) for state, n in rows}

    def dead(self, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(InboxRow).where(InboxRow.state == "dead").order_by(InboxRow.id.desc()).limit(limit)
        with self._sessions() as session:
            return [
                {"id": r.id, "key": r.key, "kind": r.kind, "attempts": r.attempts, "error": r.error}
                for r in session.scalars(stmt)
            ]

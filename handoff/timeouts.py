"""Inactivity on both sides of a handoff, swept periodically (one process at a time across the deployment).

- A citizen left waiting longer than `wait_s` is told nobody could take the call now and offered a protocol;
  the handoff is recorded as abandoned.
- A citizen silent for `citizen_idle_s` after the agent spoke is asked whether they are still there; silent
  `citizen_grace_s` more, the service closes with the reason `citizen_inactive`.
- An agent who leaves the citizen unanswered for `agent_idle_s` is paused and the conversation goes back to the
  front of its queue, where routing (or another agent) takes it.

Every step (`InactivitySteps`) is a conditional change (the conversation must still be in the state the sweep
saw), so a citizen who writes while the sweep runs wins, and a second process sweeping by mistake repeats nothing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.i18n import t
from core.models import Event, Message, isoformat
from handoff.actions import AgentActions
from handoff.context import HandoffContext, latest_message_id, move
from handoff.models import Handoff
from handoff.queue import Queues
from handoff.records import QUEUE_TOPIC, HandoffError, conversation_topic

if TYPE_CHECKING:
    from handoff.service import HandoffService

log = logging.getLogger(__name__)

WARNED = "citizen_idle_warned"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; 0 turns a rule off."""

    wait_s: float = 3600.0
    citizen_idle_s: float = 600.0
    citizen_grace_s: float = 300.0
    agent_idle_s: float = 300.0


@dataclass(slots=True)
class SweepReport:
    expired_waits: list[str] = field(default_factory=list)
    warned_citizens: list[str] = field(default_factory=list)
    closed_idle: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    overflowed: list[str] = field(default_factory=list)
    routed: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(
            len(part)
            for part in (
                self.expired_waits,
                self.warned_citizens,
                self.closed_idle,
                self.requeued,
                self.overflowed,
                self.routed,
            )
        )


@dataclass(frozen=True, slots=True)
class _Served:
    conversation_id: str
    handoff_id: int
    agent: str
    latest_id: int | None  # the conversation's newest message: a step applies only if nothing was said since
    last_role: str | None  # of the newest message since the assignment
    last_at: datetime | None
    unanswered_since: datetime | None  # the citizen's first message after the agent's latest one
    warned_message_id: int | None


def served_snapshot(session: Session) -> list[_Served]:
    """Each served conversation's latest exchange, as the inactivity rules read it."""
    out: list[_Served] = []
    for row in session.scalars(select(Handoff).where(Handoff.status == "with_agent").order_by(Handoff.id)):
        assigned = row.assigned_at or row.requested_at
        recent = list(
            session.scalars(
                select(Message)
                .where(Message.conversation_id == row.conversation_id)
                .order_by(Message.id.desc())
                .limit(50)
            )
        )
        since = [m for m in recent if m.created_at >= assigned]
        last = since[0] if since else None
        unanswered: datetime | None = None
        for message in since:  # newest first: walk back to the agent's latest message
            if message.role == "agent":
                break
            if message.role == "user":
                unanswered = message.created_at
        if unanswered is None and not any(m.role == "agent" for m in since):
            unanswered = assigned  # taken but never answered: the citizen has waited since the assignment
        warned = session.scalars(
            select(Event)
            .where(Event.conversation_id == row.conversation_id, Event.kind == WARNED)
            .order_by(Event.id.desc())
            .limit(1)
        ).first()
        out.append(
            _Served(
                row.conversation_id,
                row.id,
                row.agent or "",
                recent[0].id if recent else None,
                None if last is None else last.role,
                None if last is None else last.created_at,
                unanswered,
                None if warned is None else warned.payload.get("message_id"),
            )
        )
    return out


class InactivitySteps:
    """The changes the sweep makes, each applied only if the conversation is still as the sweep saw it."""

    def __init__(self, context: HandoffContext, queues: Queues, actions: AgentActions) -> None:
        self._context = context
        self._queues = queues
        self._actions = actions

    def waiting_since(self, before: datetime) -> list[str]:
        """Conversations that have waited for a person since before `before`."""
        with self._context.sessions() as session:
            return list(
                session.scalars(
                    select(Handoff.conversation_id)
                    .where(Handoff.status == "waiting", Handoff.requested_at <= before)
                    .order_by(Handoff.id)
                )
            )

    def expire_wait(self, conversation_id: str) -> bool:
        """Nobody took the conversation in time: the citizen is offered a protocol and it goes back to the bot."""
        return self._queues.abandon(conversation_id, t("handoff.timeout.waiting", self._context.config.locale))

    def requeue_idle(self, conversation_id: str, handoff_id: int, agent: str, latest_id: int | None) -> bool:
        """The agent left the citizen unanswered: the agent is paused and the conversation returns to the front of
        its queue (its handoff keeps its place); False when anything was said since the sweep looked."""
        ctx = self._context
        now = ctx.clock()
        with ctx.sessions.begin() as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "with_agent" or row.agent != agent:
                return False
            if latest_message_id(session, conversation_id) != latest_id:
                return False
            if not move(session, conversation_id, "with_agent", "waiting", now):
                return False
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_agent_timeout",
                    payload={"agent": agent, "team": row.team, "assigned_at": isoformat(row.assigned_at)},
                    created_at=now,
                )
            )
            row.status, row.agent, row.assigned_at, row.first_response_at = "waiting", None, None, None
            team = row.team
            told = ctx.notify_in(
                session,
                conversation_id,
                f"agent_timeout:{handoff_id}:{latest_id}",
                t("handoff.timeout.agent", ctx.config.locale),
            )
        ctx.live.set_presence(agent, "paused", ctx.config.presence_ttl_s)
        ctx.live.publish(QUEUE_TOPIC, {"event": "presence", "agent": agent, "status": "paused"})
        ctx.live.enqueue(team, conversation_id, handoff_id)
        ctx.live.publish(QUEUE_TOPIC, {"event": "queued", "conversation_id": conversation_id, "team": team})
        ctx.live.publish(conversation_topic(conversation_id), {"event": "requeued", "agent": agent})
        ctx.push(told)
        log.info("conversation %s back to team %s: agent %s did not answer in time", conversation_id, team, agent)
        return True

    def warn_idle_citizen(self, conversation_id: str, handoff_id: int, latest_id: int | None, grace_s: float) -> bool:
        """Ask a silent citizen whether they are still there (once per silence)."""
        ctx = self._context
        now = ctx.clock()
        with ctx.sessions.begin() as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "with_agent":
                return False
            if latest_message_id(session, conversation_id) != latest_id:
                return False
            text = t("handoff.timeout.citizen_warning", ctx.config.locale, minutes=max(1, round(grace_s / 60)))
            told = ctx.notify_in(session, conversation_id, f"idle_warning:{handoff_id}:{latest_id}", text)
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind=WARNED,
                    payload={"handoff_id": handoff_id, "message_id": told.id},
                    created_at=now,
                )
            )
        ctx.push(told)
        return True

    def close_idle(self, conversation_id: str, handoff_id: int, latest_id: int | None) -> bool:
        """The citizen stayed silent after the warning: the service closes as `citizen_inactive`."""
        with self._context.sessions() as session:
            row = session.get(Handoff, handoff_id)
            if row is None or row.status != "with_agent":
                return False
            if latest_message_id(session, conversation_id) != latest_id:
                return False
        try:
            self._actions.close(conversation_id, "system", "citizen_inactive", override=True)
        except HandoffError:
            return False
        return True


class InactivitySweep:
    """Applies the rules above through the handoff service; `run_forever` is the app's background loop."""

    def __init__(self, handoff: HandoffService, timeouts: Timeouts, *, owner: str, interval_s: float = 15.0) -> None:
        self.handoff = handoff
        self.timeouts = timeouts
        self.owner = owner
        self.interval_s = interval_s

    def sweep(self) -> SweepReport:
        report = SweepReport()
        # One sweeper at a time across processes: the lock outlives a crashed sweeper by one interval only.
        if not self.handoff.live.acquire("sweep", self.owner, max(self.interval_s, 1.0)):
            return report
        try:
            self._sweep(report)
        finally:
            self.handoff.live.release("sweep", self.owner)
        if report.total():
            log.info(
                "handoff sweep: %d waits expired, %d citizens warned, %d closed idle, %d requeued, %d overflowed, "
                "%d routed",
                len(report.expired_waits),
                len(report.warned_citizens),
                len(report.closed_idle),
                len(report.requeued),
                len(report.overflowed),
                len(report.routed),
            )
        return report

    def _sweep(self, report: SweepReport) -> None:
        handoff, rules = self.handoff, self.timeouts
        now = handoff.now()
        if rules.wait_s > 0:
            for conversation_id in handoff.waiting_since(now - timedelta(seconds=rules.wait_s)):
                if handoff.expire_wait(conversation_id):
                    report.expired_waits.append(conversation_id)
        with handoff.session() as session:
            served = served_snapshot(session)
        for item in served:
            self._apply(item, now, report)
        report.overflowed.extend(cid for cid, _ in handoff.overflow())
        report.routed.extend(cid for cid, _ in handoff.route())

    def _apply(self, item: _Served, now: datetime, report: SweepReport) -> None:
        handoff, rules = self.handoff, self.timeouts

        def older_than(moment: datetime | None, seconds: float) -> bool:
            return seconds > 0 and moment is not None and moment <= now - timedelta(seconds=seconds)

        if older_than(item.unanswered_since, rules.agent_idle_s):
            if handoff.requeue_idle(item.conversation_id, item.handoff_id, item.agent, item.latest_id):
                report.requeued.append(item.conversation_id)
            return
        if rules.citizen_idle_s <= 0:
            return
        if item.last_role == "agent" and older_than(item.last_at, rules.citizen_idle_s):
            if handoff.warn_idle_citizen(item.conversation_id, item.handoff_id, item.latest_id, rules.citizen_grace_s):
                report.warned_citizens.append(item.conversation_id)
            return
        warned = item.last_role == "system" and item.warned_message_id == item.latest_id
        # The grace may be 0 (close right after the warning's next sweep), so it is not older_than's "off".
        grace_over = item.last_at is not None and item.last_at <= now - timedelta(seconds=rules.citizen_grace_s)
        if warned and grace_over and handoff.close_idle(item.conversation_id, item.handoff_id, item.latest_id):
            report.closed_idle.append(item.conversation_id)

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # the loop must outlive a database hiccup; the next round retries
                log.exception("handoff sweep failed; retrying in %.0f s", self.interval_s)


class SweepThread:
    """The sweep in a daemon thread for the app's lifetime (started and stopped by the FastAPI lifespan)."""

    def __init__(self, sweep: InactivitySweep) -> None:
        self.sweep = sweep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=sweep.run_forever, args=(self._stop,), name="handoff-sweep", daemon=True)

    def start(self) -> SweepThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

"""The teams' queues: a request puts a conversation in line (or tells the citizen when the team opens), the citizen
learns their place and likely wait, may leave, and a team with nobody available overflows to its helper team.

The queue is ordered by the handoff row's id: unique and increasing, so requests in the same clock tick keep their
order, and the live queue can always be rebuilt from the database (`rebuild`).
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Conversation, Event
from core.store import ConversationNotFound
from handoff.context import HandoffContext, move, open_row
from handoff.dispatch import Dispatcher
from handoff.models import Handoff
from handoff.records import QUEUE_TOPIC, HandoffError, HandoffView, Records, Requested, Ticket, view

log = logging.getLogger(__name__)


class Queues:
    def __init__(self, context: HandoffContext, records: Records, dispatcher: Dispatcher) -> None:
        self._context = context
        self._records = records
        self._dispatcher = dispatcher

    def request(
        self, conversation_id: str, *, reason: str, source: str, team: str | None = None, skill: str | None = None
    ) -> Ticket:
        """Queue the conversation for a person; asking again while queued or served changes nothing.

        A team the citizen names must exist (`unknown_team`); those that come from the settings (topic rules) are
        trusted.
        """
        if team is not None and source == "citizen_request":
            self.require_team(team)
        with self._context.sessions.begin() as session:
            requested = self.request_in(session, conversation_id, reason=reason, source=source, team=team, skill=skill)
        self.announce(requested)
        if requested.opens_at is not None:
            return requested.ticket()
        return self.ticket(conversation_id)

    def request_in(
        self,
        session: Session,
        conversation_id: str,
        *,
        reason: str,
        source: str,
        team: str | None = None,
        skill: str | None = None,
    ) -> Requested:
        """`request` inside the caller's transaction (a channel that commits the handoff with the bot's turn and
        the citizen's notice); the caller must `announce` the result once committed.

        Without a team, or with the default one, the conversation's channel may name its own (a WhatsApp
        number's team). Outside the team's hours nothing is queued; the citizen is told when it opens.
        """
        ctx = self._context
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        team = self._team(session, conversation.channel, conversation_id, team)
        now = ctx.clock()
        schedule = ctx.config.hours.get(team)
        if schedule is not None and not schedule.is_open(now):
            opens_at = schedule.next_opening(now)
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_after_hours",
                    payload={
                        "team": team,
                        "reason": reason[:500],
                        "opens_at": opens_at.isoformat() if opens_at else None,
                    },
                    created_at=now,
                )
            )
            return Requested(conversation_id, team, source, conversation.state, opens_at=opens_at)
        if not move(session, conversation_id, ("bot", "closed"), "waiting", now):
            return Requested(conversation_id, team, source, conversation.state)
        overflowed_from = None
        target = ctx.config.assignment.overflow.get(team)
        has_room = self._dispatcher.has_room
        if target and target != team and not has_room(session, team) and has_room(session, target):
            overflowed_from, team = team, target
        row = Handoff(
            conversation_id=conversation_id,
            team=team,
            reason=reason[:500],
            source=source,
            status="waiting",
            requested_at=now,
            skill=skill,
            language=conversation.language,
            overflowed_from=overflowed_from,
        )
        session.add(row)
        session.flush()
        payload = {"team": team, "reason": reason[:500], "source": source}
        if overflowed_from is not None:
            payload["overflowed_from"] = overflowed_from
        session.add(Event(conversation_id=conversation_id, kind="handoff_queued", payload=payload, created_at=now))
        position = int(
            session.scalar(
                select(func.count())
                .select_from(Handoff)
                .where(Handoff.team == team, Handoff.status == "waiting", Handoff.id <= row.id)
            )
            or 1
        )
        pace = self._pace(team, session)
        return Requested(
            conversation_id,
            team,
            source,
            "waiting",
            order=row.id,
            position=position,
            estimated_wait_s=None if pace is None else round(pace * position, 1),
        )

    def announce(self, requested: Requested | None) -> None:
        """Bring the live queue in step with a committed request (`request_in`); nothing when it queued nothing."""
        if requested is None or requested.order is None:
            return
        live = self._context.live
        live.enqueue(requested.team, requested.conversation_id, requested.order)
        live.publish(
            QUEUE_TOPIC, {"event": "queued", "conversation_id": requested.conversation_id, "team": requested.team}
        )
        log.info("conversation %s queued for team %s (%s)", requested.conversation_id, requested.team, requested.source)
        self._dispatcher.route([requested.team])

    def require_team(self, team: str) -> None:
        """Refuse a queue no setor serves: a conversation sent there would wait for nobody."""
        teams = self._context.teams
        if teams is not None and not teams.exists(team):
            log.info("handoff to unknown team %r refused", team[:64])
            raise HandoffError("unknown_team", "handoff.error.unknown_team", status=422)

    def enqueue(self, conversation_id: str, *, team: str, reason: str) -> int | None:
        """The MCP tool `handoff_to_human`'s queue (domain.handoff.HandoffQueue)."""
        return self.request(conversation_id, reason=reason, source="tool", team=team).position

    def _team(self, session: Session, channel: str, conversation_id: str, team: str | None) -> str:
        """The team named, unless it is only the default: then the channel's own team (e.g. the WhatsApp number's)."""
        default = self._context.config.default_team
        if team and team != default:
            return team
        return self._context.delivery(channel).team(session, conversation_id) or default

    def ticket(self, conversation_id: str) -> Ticket:
        ctx = self._context
        conversation = ctx.store.get_conversation(conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        current = self._records.current(conversation_id)
        team = current.team if current is not None else ctx.config.default_team
        position = ctx.live.position(team, conversation_id) if conversation.state == "waiting" else None
        estimate = None if position is None else self._pace(team)
        return Ticket(
            conversation_id,
            team,
            conversation.state,
            position,
            estimated_wait_s=None if estimate is None or position is None else round(estimate * position, 1),
        )

    def _pace(self, team: str, session: Session | None = None, window: int = 20) -> float | None:
        """Mean seconds between the team's recent assignments: how fast its queue moves now."""
        stmt = (
            select(Handoff.assigned_at)
            .where(Handoff.team == team, Handoff.assigned_at.is_not(None))
            .order_by(Handoff.assigned_at.desc())
            .limit(window + 1)
        )
        if session is None:
            with self._context.sessions() as own:
                taken = list(own.scalars(stmt))
        else:
            taken = list(session.scalars(stmt))
        moments = [moment for moment in taken if moment is not None]
        if len(moments) < 2:
            return None
        return (moments[0] - moments[-1]).total_seconds() / (len(moments) - 1)

    def waiting(self, team: str | None = None) -> list[tuple[HandoffView, int]]:
        """Waiting conversations with their queue positions, team by team, first served first."""
        ctx = self._context
        teams = [team] if team is not None else ctx.live.teams()
        order = [(name, cid) for name in teams for cid in ctx.live.queue(name)]
        if not order:
            return []
        with ctx.sessions() as session:
            rows = {
                row.conversation_id: view(row)
                for row in session.scalars(
                    select(Handoff).where(
                        Handoff.status == "waiting", Handoff.conversation_id.in_([cid for _, cid in order])
                    )
                )
            }
        out: list[tuple[HandoffView, int]] = []
        positions: dict[str, int] = {}
        for name, cid in order:
            if cid in rows:
                positions[name] = positions.get(name, 0) + 1
                out.append((rows[cid], positions[name]))
        return out

    def leave(self, conversation_id: str) -> None:
        """The citizen gives up while waiting: recorded as an abandonment, back to the bot."""
        if not self.abandon(conversation_id, None):
            raise HandoffError("not_waiting", "handoff.error.not_waiting")

    def abandon(self, conversation_id: str, notice: str | None) -> bool:
        """Out of the queue and back to the bot, telling the citizen `notice` (None: they left themselves)."""
        ctx = self._context
        now = ctx.clock()
        with ctx.sessions.begin() as session:
            if not move(session, conversation_id, "waiting", "bot", now):
                return False
            row = open_row(session, conversation_id)
            team = ctx.config.default_team if row is None else row.team
            if row is not None:
                row.status = "abandoned"
                row.abandoned_at = now
            told = None if notice is None else ctx.notify_in(session, conversation_id, "wait_timeout", notice)
        ctx.live.remove(team, conversation_id)
        ctx.live.publish(QUEUE_TOPIC, {"event": "abandoned", "conversation_id": conversation_id, "team": team})
        if told is not None:
            ctx.push(told)
        return True

    def overflow(self) -> list[tuple[str, str]]:
        """Move waiting conversations from a team with nobody available to its overflow team, when that one has
        someone; returns (conversation, new team) pairs."""
        ctx = self._context
        has_room = self._dispatcher.has_room
        moved: list[tuple[str, str]] = []
        for team in ctx.live.teams():
            target = ctx.config.assignment.overflow.get(team)
            if not target or target == team:
                continue
            now = ctx.clock()
            with ctx.sessions.begin() as session:
                if has_room(session, team) or not has_room(session, target):
                    continue
                rows = session.scalars(
                    select(Handoff).where(Handoff.team == team, Handoff.status == "waiting").order_by(Handoff.id)
                ).all()
                for row in rows:
                    row.overflowed_from = team
                    row.team = target
                    session.add(
                        Event(
                            conversation_id=row.conversation_id,
                            kind="handoff_overflowed",
                            payload={"from_team": team, "to_team": target},
                            created_at=now,
                        )
                    )
                entries = [(row.conversation_id, row.id) for row in rows]
            for conversation_id, order in entries:
                ctx.live.remove(team, conversation_id)
                ctx.live.enqueue(target, conversation_id, order)
                ctx.live.publish(QUEUE_TOPIC, {"event": "queued", "conversation_id": conversation_id, "team": target})
                moved.append((conversation_id, target))
        if moved:
            self._dispatcher.route({team for _, team in moved})
        return moved

    def rebuild(self) -> int:
        """Put every waiting conversation back in its team's queue (after a restart or a Redis flush)."""
        with self._context.sessions() as session:
            rows = session.scalars(select(Handoff).where(Handoff.status == "waiting").order_by(Handoff.id)).all()
            entries = [(row.team, row.conversation_id, float(row.id)) for row in rows]
        for team, cid, score in entries:
            self._context.live.enqueue(team, cid, score)
        return len(entries)

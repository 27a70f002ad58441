"""Who takes a waiting conversation: an agent's claim, a supervisor's reassignment, and least-busy routing of the
agents online (presence), by the rules of handoff.assignment.

An assignment is a locked, conditional change: the conversation's lock and the UPDATE from `waiting` make exactly
one of concurrent claims win, and the agent's own lock keeps two routers from overfilling the same agent.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Conversation, Event
from core.store import ConversationNotFound
from handoff.assignment import Candidate, Need, Profile, choose, loads
from handoff.context import HandoffContext, move, open_row, served_row
from handoff.models import Handoff
from handoff.records import QUEUE_TOPIC, HandoffError, HandoffView, conversation_topic, view

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, context: HandoffContext) -> None:
        self._context = context

    def claim(self, conversation_id: str, agent: str) -> HandoffView:
        """Take a waiting conversation; of concurrent claims exactly one succeeds, the others get `taken`.

        An agent already holding as many conversations as their capacity gets `at_capacity`.
        """
        return self._assign(conversation_id, agent, by=agent)

    def reassign(self, conversation_id: str, supervisor: str, to_agent: str) -> HandoffView:
        """A supervisor gives a waiting or served conversation to an agent (to themselves: taking it over).

        Capacity does not bind a supervisor's decision; the previous agent sees it leave their list.
        """
        ctx = self._context
        conversation = ctx.store.get_conversation(conversation_id)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        if conversation.state == "waiting":
            return self._assign(conversation_id, to_agent, by=supervisor, check_capacity=False)
        now = ctx.clock()
        with ctx.sessions.begin() as session:
            row = served_row(session, conversation_id)
            previous = row.agent
            if previous != to_agent:
                row.agent = to_agent
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="handoff_reassigned",
                        payload={"from_agent": previous, "to_agent": to_agent, "by": supervisor},
                        created_at=now,
                    )
                )
            session.flush()
            reassigned = view(row)
        if previous != to_agent:
            update_ = {
                "event": "reassigned",
                "conversation_id": conversation_id,
                "agent": to_agent,
                "from": previous,
                "team": reassigned.team,
            }
            ctx.live.publish(QUEUE_TOPIC, update_)
            ctx.live.publish(conversation_topic(conversation_id), update_)
        return reassigned

    def _assign(
        self, conversation_id: str, agent: str, *, by: str, check_capacity: bool = True, patient: bool = True
    ) -> HandoffView:
        live = self._context.live
        # The agent's own lock makes "count their conversations, then add one" atomic across processes: without it
        # two routers could each see room for one more and overfill the agent.
        token = f"{conversation_id}:{uuid.uuid4().hex}"
        agent_key = f"agent:{agent}"
        if check_capacity and not self._acquire_patiently(agent_key, token, patient):
            raise HandoffError("agent_busy", "handoff.error.agent_busy")
        try:
            assigned = self._assign_locked(conversation_id, agent, by=by, check_capacity=check_capacity)
        finally:
            if check_capacity:
                live.release(agent_key, token)
        live.remove(assigned.team, conversation_id)
        live.publish(
            QUEUE_TOPIC,
            {"event": "assigned", "conversation_id": conversation_id, "agent": agent, "team": assigned.team},
        )
        live.publish(conversation_topic(conversation_id), {"event": "assigned", "agent": agent})
        return assigned

    def _acquire_patiently(self, key: str, owner: str, patient: bool) -> bool:
        """The lock, waiting up to ~1 s for an assignment in flight to finish (a router gives up at once instead)."""
        for _ in range(50 if patient else 1):
            if self._context.live.acquire(key, owner, self._context.config.lock_ttl_s):
                return True
            if patient:
                threading.Event().wait(0.02)
        return False

    def _assign_locked(self, conversation_id: str, agent: str, *, by: str, check_capacity: bool) -> HandoffView:
        ctx = self._context
        if not ctx.live.acquire(conversation_id, agent, ctx.config.lock_ttl_s):
            raise HandoffError("taken", "handoff.error.taken")
        try:
            now = ctx.clock()
            with ctx.sessions.begin() as session:
                if session.get(Conversation, conversation_id) is None:
                    raise ConversationNotFound(conversation_id)
                if check_capacity:
                    load, _ = loads(session, [agent])[agent]
                    if load >= ctx.profiles.get(session, agent).capacity:
                        raise HandoffError("at_capacity", "handoff.error.at_capacity")
                if not move(session, conversation_id, "waiting", "with_agent", now):
                    raise HandoffError("taken", "handoff.error.taken")
                row = open_row(session, conversation_id)
                assert row is not None, "a waiting conversation always has an open handoff"
                row.status = "with_agent"
                row.agent = agent
                row.assigned_at = now
                payload = {"agent": agent, "team": row.team} | ({} if by == agent else {"by": by})
                session.add(
                    Event(conversation_id=conversation_id, kind="handoff_assigned", payload=payload, created_at=now)
                )
                session.flush()
                return view(row)
        finally:
            ctx.live.release(conversation_id, agent)

    # --- presence and profiles ----------------------------------------------------------------------------

    def set_presence(self, agent: str, status: str) -> list[tuple[str, str]]:
        """The agent's availability (online, paused, offline), kept while their console keeps beating; coming online
        in a least-busy team may bring conversations at once (returned as (conversation, agent) pairs)."""
        ctx = self._context
        ctx.live.set_presence(agent, status, ctx.config.presence_ttl_s)
        ctx.live.publish(QUEUE_TOPIC, {"event": "presence", "agent": agent, "status": status})
        if status != "online":
            return []
        with ctx.sessions() as session:
            teams = ctx.profiles.get(session, agent).teams
        return self.route(teams)

    def profile(self, agent: str) -> Profile:
        with self._context.sessions() as session:
            return self._context.profiles.get(session, agent)

    def save_profile(self, profile: Profile) -> Profile:
        ctx = self._context
        with ctx.sessions.begin() as session:
            saved = ctx.profiles.save(session, profile, ctx.clock())
        self.route(profile.teams)
        return saved

    def candidates(self, session: Session) -> list[Candidate]:
        """Agents online now (paused and offline ones take nothing), with their profiles and current load.

        With the setors' directory wired, a profile's queues are cut to those of the agent's setor: routing never
        gives an agent a conversation the console would not let them claim (docs/decisions/0036-console-access.md).
        """
        ctx = self._context
        online = [agent for agent, status in ctx.live.presence().items() if status == "online"]
        profiles = ctx.profiles.many(session, online)
        if ctx.teams is not None:
            allowed = ctx.teams.queues_of_staff(session, online)
            profiles = {
                agent: replace(profile, teams=tuple(team for team in profile.teams if team in allowed[agent]))
                for agent, profile in profiles.items()
            }
        counted = loads(session, online)
        return [Candidate(profiles[agent], *counted[agent]) for agent in online]

    def has_room(self, session: Session, team: str) -> bool:
        """Someone online in the team could take one more conversation now."""
        return choose(self.candidates(session), Need(team)) is not None

    # --- routing ------------------------------------------------------------------------------------------

    def route(self, teams: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Give waiting conversations of least-busy teams to available agents, first come first served.

        Safe to run in several processes at once: each assignment is the same locked, conditional change as a
        claim, so a conversation two routers pick goes to one agent and the other router moves on.
        """
        ctx = self._context
        names = list(teams) if teams is not None else ctx.live.teams()
        assigned: list[tuple[str, str]] = []
        for team in names:
            if ctx.config.assignment.mode_of(team) != "least_busy":
                continue
            order = ctx.live.queue(team)
            if not order:
                continue
            with ctx.sessions() as session:
                pool = {c.profile.subject: c for c in self.candidates(session)}
                needs = {
                    row.conversation_id: Need(team, row.skill, row.language)
                    for row in session.scalars(
                        select(Handoff).where(Handoff.status == "waiting", Handoff.conversation_id.in_(order))
                    )
                }
            for conversation_id in order:
                if conversation_id not in needs:
                    continue
                agent = self._route_one(conversation_id, needs[conversation_id], pool)
                if agent is not None:
                    assigned.append((conversation_id, agent))
                    log.info("conversation %s routed to %s (team %s)", conversation_id, agent, team)
        return assigned

    def _route_one(self, conversation_id: str, need: Need, pool: dict[str, Candidate]) -> str | None:
        """Assign one conversation from `pool` (updated in place); an agent another process is assigning to, or
        who filled up meanwhile, leaves this pass's pool and the next best one is tried."""
        while (pick := choose(pool.values(), need)) is not None:
            agent = pick.profile.subject
            try:
                self._assign(conversation_id, agent, by="router", patient=False)
            except HandoffError as exc:
                if exc.code not in ("agent_busy", "at_capacity"):
                    return None  # taken by another process
                del pool[agent]
                continue
            pool[agent] = Candidate(pick.profile, pick.load + 1, self._context.clock())
            return agent
        return None

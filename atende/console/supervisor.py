"""The supervisor's resource: the shift's board (agents, queues, today's times), agents' routing profiles, and
stepping into conversations (reassign, intervene, close). Routes under /api/console/supervisor and /agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter

from atende.accounts.routers.common import sees_everything
from atende.console.access import require_access, scope_of
from atende.console.schemas import CloseIn, ProfileIn, ReassignIn, TextIn
from atende.deps import AccountsDep, CurrentAuth, HandoffDep, SettingsDep
from core.accounts.types import StaffUser
from core.models import isoformat
from handoff.assignment import Profile, loads
from handoff.records import HandoffError, HandoffView

router = APIRouter(prefix="/api/console", tags=["console: supervisor"])

SERVICE_ROLES = ("agent", "supervisor")


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 1) if present else None


def _staff(accounts: AccountsDep, auth: CurrentAuth) -> list[StaffUser]:
    """Service staff the caller may see: a supervisor sees their teams (and those below), an admin everyone."""
    team_ids = None if sees_everything(auth) else auth.principal.team_ids
    return [
        user for user in accounts.directory.users(team_ids=team_ids) if user.role in SERVICE_ROLES and user.is_active
    ]


def _profile_out(profile: Profile) -> dict[str, Any]:
    return {
        "teams": list(profile.teams),
        "capacity": profile.capacity,
        "skills": list(profile.skills),
        "languages": list(profile.languages),
    }


def _served_out(view: HandoffView, now: datetime, names: dict[str, str]) -> dict[str, Any]:
    since = view.assigned_at or view.requested_at
    return {
        "conversation_id": view.conversation_id,
        "team": view.team,
        "agent": view.agent,
        "agent_name": names.get(view.agent or "", view.agent),
        "reason": view.reason,
        "assigned_at": isoformat(view.assigned_at),
        "handling_s": round((now - since).total_seconds(), 1),
    }


@router.get("/supervisor", summary="The shift: agents online, paused or busy; queues, longest wait; today's times")
def board(handoff: HandoffDep, accounts: AccountsDep, auth: CurrentAuth, settings: SettingsDep) -> dict[str, Any]:
    now = handoff.now()
    zone = ZoneInfo(settings.audit_timezone)
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    staff = _staff(accounts, auth)
    scope = scope_of(handoff, auth.principal)
    names = {user.subject: user.display_name or user.username for user in staff}
    presence = handoff.live.presence()
    served = [view for view in handoff.served() if scope.sees_queue(view.team)]
    with handoff.session() as session:
        load = loads(session, names)
        profiles = handoff.profiles.many(session, names)
    agents = []
    for user in staff:
        status = presence.get(user.subject, "offline")
        count, _ = load[user.subject]
        profile = profiles[user.subject]
        if status == "online" and count > 0:
            status = "busy"  # online and serving: the supervisor's "ocupado"
        agents.append(
            {
                "subject": user.subject,
                "name": names[user.subject],
                "role": user.role,
                "status": status,
                "load": count,
                **_profile_out(profile),
            }
        )
    queues: dict[str, dict[str, Any]] = {}
    waiting = []
    for view, position in handoff.waiting():
        if not scope.sees_queue(view.team):
            continue
        waited = round((now - view.requested_at).total_seconds(), 1)
        entry = queues.setdefault(view.team, {"size": 0, "longest_wait_s": 0.0})
        entry["size"] += 1
        entry["longest_wait_s"] = max(entry["longest_wait_s"], waited)
        waiting.append(
            {"conversation_id": view.conversation_id, "team": view.team, "position": position, "waited_s": waited}
        )
    today = [view for view in handoff.since(midnight) if scope.sees_queue(view.team)]
    timings = [view.timings_s() for view in today]
    return {
        "agents": agents,
        "queues": queues,
        "waiting": waiting,
        "served": [_served_out(view, now, names) for view in served],
        "today": {
            "handoffs": len(today),
            "closed": sum(1 for view in today if view.status == "closed"),
            "mean_wait_s": _mean([t["wait"] for t in timings]),
            "longest_wait_s": max((t["wait"] for t in timings if t["wait"] is not None), default=None),
            "mean_first_response_s": _mean([t["first_response"] for t in timings]),
            "mean_handling_s": _mean([t["handling"] for t in timings]),
            "abandoned": sum(1 for t in timings if t["abandonment"] is not None),
        },
    }


def _require_service_staff(accounts: AccountsDep, auth: CurrentAuth, subject: str) -> StaffUser:
    for user in _staff(accounts, auth):
        if user.subject == subject:
            return user
    raise HandoffError("unknown_agent", "handoff.error.unknown_agent", status=404)


@router.post(
    "/supervisor/conversations/{conversation_id}/reassign",
    summary="Give a waiting or served conversation to an agent (to oneself: take it over)",
)
def reassign(
    conversation_id: str, body: ReassignIn, handoff: HandoffDep, accounts: AccountsDep, auth: CurrentAuth
) -> dict[str, Any]:
    require_access(handoff, auth.principal, conversation_id, "supervise")
    target = auth.principal.subject if body.agent == "me" else body.agent
    if target != auth.principal.subject:
        _require_service_staff(accounts, auth, target)
    view = handoff.reassign(conversation_id, auth.principal.subject, target)
    return {"conversation_id": view.conversation_id, "agent": view.agent, "team": view.team, "status": view.status}


@router.post(
    "/supervisor/conversations/{conversation_id}/messages",
    summary="Step into a conversation another agent serves: a message to the citizen (recorded)",
)
def intervene(conversation_id: str, body: TextIn, handoff: HandoffDep, auth: CurrentAuth) -> dict[str, Any]:
    require_access(handoff, auth.principal, conversation_id, "supervise")
    message = handoff.reply(conversation_id, auth.principal.subject, body.text, override=True)
    return {"id": message.id, "role": message.role, "text": message.text, "created_at": isoformat(message.created_at)}


@router.post(
    "/supervisor/conversations/{conversation_id}/close", summary="Close a service another agent holds, with a reason"
)
def close(conversation_id: str, body: CloseIn, handoff: HandoffDep, auth: CurrentAuth) -> dict[str, Any]:
    require_access(handoff, auth.principal, conversation_id, "supervise")
    view = handoff.close(conversation_id, auth.principal.subject, body.reason, override=True)
    return {"conversation_id": view.conversation_id, "status": view.status, "close_reason": view.close_reason}


@router.get("/agents/me", summary="The caller's routing profile: teams, capacity, skills, languages")
def my_profile(handoff: HandoffDep, auth: CurrentAuth) -> dict[str, Any]:
    return {"subject": auth.principal.subject, **_profile_out(handoff.profile(auth.principal.subject))}


@router.put("/agents/{subject}/profile", summary="Set an agent's teams, capacity, skills and languages")
def set_profile(
    subject: str, body: ProfileIn, handoff: HandoffDep, accounts: AccountsDep, auth: CurrentAuth
) -> dict[str, Any]:
    _require_service_staff(accounts, auth, subject)
    scope = scope_of(handoff, auth.principal)
    for team in body.teams:
        handoff.require_team(team)
        # A supervisor sends agents only to their own setors' queues: routing would hand them those citizens.
        if not scope.sees_queue(team):
            raise HandoffError("other_team", "handoff.error.other_team", status=403)
    saved = handoff.save_profile(
        Profile(subject, tuple(body.teams), body.capacity, tuple(body.skills), tuple(body.languages))
    )
    return {"subject": subject, **_profile_out(saved)}

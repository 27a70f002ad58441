"""Which agent gets a waiting conversation: teams, capacity, skills, languages, least busy first.

Pure selection over a snapshot (who is online, how many conversations each one holds); the database decides
the assignment itself (handoff.dispatch), so two processes assigning at once cannot overfill an agent
beyond what a lost race allows: the loser's conditional UPDATE changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import utcnow
from handoff.models import AgentProfile, Handoff

Mode = Literal["pick", "least_busy"]


@dataclass(frozen=True, slots=True)
class Profile:
    subject: str
    teams: tuple[str, ...]
    capacity: int
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("pt-BR",)

    def serves(self, team: str) -> bool:
        return team in self.teams

    def speaks(self, language: str | None) -> bool:
        return language is None or _base(language) in {_base(code) for code in self.languages}


@dataclass(frozen=True, slots=True)
class Need:
    """What a waiting conversation asks of its agent."""

    team: str
    skill: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    profile: Profile
    load: int  # conversations with the agent now
    last_assigned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AssignmentRules:
    """Per-team assignment: how conversations reach agents and where they go when nobody can take them."""

    mode: Mode = "pick"
    team_modes: Mapping[str, Mode] = field(default_factory=dict)
    overflow: Mapping[str, str] = field(default_factory=dict)  # team → the team that helps when it has nobody

    def mode_of(self, team: str) -> Mode:
        return self.team_modes.get(team, self.mode)


def _base(language: str) -> str:
    return language.split("-")[0].lower()


def available(candidates: Iterable[Candidate], need: Need) -> list[Candidate]:
    """Agents of the team with room and the skill; the citizen's language is a preference, not a filter, because
    the console translates (docs/decisions/0031-routing-presence-timeouts.md)."""
    return [
        c
        for c in candidates
        if c.profile.serves(need.team)
        and c.load < c.profile.capacity
        and (need.skill is None or need.skill in c.profile.skills)
    ]


def choose(candidates: Iterable[Candidate], need: Need) -> Candidate | None:
    """Least busy first (share of capacity in use), speakers of the citizen's language before others, then whoever
    waited longest since their last assignment."""
    fit = available(candidates, need)
    if not fit:
        return None
    never = datetime.min.replace(tzinfo=utcnow().tzinfo)
    return min(
        fit,
        key=lambda c: (
            not c.profile.speaks(need.language),
            c.load / c.profile.capacity,
            c.last_assigned_at or never,
            c.profile.subject,
        ),
    )


class Profiles:
    """Agents' profiles in the database, with defaults for agents nobody configured."""

    def __init__(self, *, default_team: str, default_capacity: int, default_languages: Sequence[str]) -> None:
        self.default_team = default_team
        self.default_capacity = default_capacity
        self.default_languages = tuple(default_languages)

    def default(self, subject: str) -> Profile:
        return Profile(subject, (self.default_team,), self.default_capacity, (), self.default_languages)

    def get(self, session: Session, subject: str) -> Profile:
        row = session.get(AgentProfile, subject)
        return self.default(subject) if row is None else _profile(row)

    def many(self, session: Session, subjects: Iterable[str]) -> dict[str, Profile]:
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        rows = {
            row.subject: row for row in session.scalars(select(AgentProfile).where(AgentProfile.subject.in_(wanted)))
        }
        return {s: _profile(rows[s]) if s in rows else self.default(s) for s in wanted}

    def save(self, session: Session, profile: Profile, now: datetime) -> Profile:
        row = session.get(AgentProfile, profile.subject)
        if row is None:
            row = AgentProfile(subject=profile.subject)
            session.add(row)
        row.teams = list(profile.teams)
        row.capacity = profile.capacity
        row.skills = list(profile.skills)
        row.languages = list(profile.languages)
        row.updated_at = now
        return profile


def _profile(row: AgentProfile) -> Profile:
    return Profile(row.subject, tuple(row.teams), row.capacity, tuple(row.skills), tuple(row.languages))


def loads(session: Session, subjects: Iterable[str]) -> dict[str, tuple[int, datetime | None]]:
    """Each agent's open conversations and latest assignment, counted in the database."""
    wanted = sorted(set(subjects))
    out: dict[str, tuple[int, datetime | None]] = {s: (0, None) for s in wanted}
    if not wanted:
        return out
    rows = session.execute(
        select(Handoff.agent, func.count())
        .where(Handoff.agent.in_(wanted), Handoff.status == "with_agent")
        .group_by(Handoff.agent)
    )
    for agent, count in rows:
        out[str(agent)] = (int(count), None)
    latest_rows = session.execute(
        select(Handoff.agent, func.max(Handoff.assigned_at)).where(Handoff.agent.in_(wanted)).group_by(Handoff.agent)
    )
    for agent, latest in latest_rows:
        count, _ = out[str(agent)]
        out[str(agent)] = (count, latest)
    return out

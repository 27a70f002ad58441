"""Which handoff queue a setor (an accounts team) serves, and which queue names exist.

Queues are keyed by short names ("atendimento", "tributos"); setors have display names ("Atendimento geral",
"Tributos"). A setor serves the queue whose key is its name written as a key, or whose catalogue label is its
name (domain.catalog.TEAMS: "atendimento" is "Atendimento geral"), so neither needs a second column.
See docs/decisions/0036-console-access.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts.models import Team, User
from core.accounts.roles import parse_role
from core.accounts.teams import visible_team_ids
from domain.catalog import TEAMS


def queue_key(name: str) -> str:
    """A display name written as a queue key: "Limpeza urbana" → "limpeza_urbana"."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


_BY_LABEL = {queue_key(label): key for key, label in TEAMS.items()}


def queues_of_names(names: Iterable[str]) -> frozenset[str]:
    """The queue keys that setors with these names serve."""
    keys: set[str] = set()
    for name in names:
        key = queue_key(name)
        keys.add(key)
        if key in _BY_LABEL:
            keys.add(_BY_LABEL[key])
    return frozenset(keys)


def queues_of_teams(session: Session, team_ids: Collection[int]) -> frozenset[str]:
    """The queues the setors `team_ids` serve."""
    if not team_ids:
        return frozenset()
    return queues_of_names(session.scalars(select(Team.name).where(Team.id.in_(list(team_ids)))))


def staff_queues(session: Session, team_ids: Collection[int], default_team: str) -> frozenset[str]:
    """The queues a staff member works in: those of the setors they see (a supervisor's include the setors below),
    or the default queue when they belong to none, as routing gives an agent without a profile the default queue."""
    if not team_ids:
        return frozenset({default_team})
    return queues_of_teams(session, team_ids)


class TeamDirectory:
    """The queue names a handoff or a transfer may name: those a setor serves, and the default queue."""

    def __init__(self, sessions: sessionmaker[Session], *, default_team: str) -> None:
        self._sessions = sessions
        self.default_team = default_team

    def queues(self) -> frozenset[str]:
        with self._sessions() as session:
            return queues_of_names(session.scalars(select(Team.name))) | {self.default_team}

    def exists(self, team: str) -> bool:
        return team in self.queues()

    def queues_of_staff(self, session: Session, subjects: Iterable[str]) -> dict[str, frozenset[str]]:
        """Each subject's queues (`staff_queues`); a subject that is no staff account has none."""
        ids = {s: int(s[5:]) for s in subjects if s.startswith("user:") and s[5:].isdigit()}
        found = {
            row.id: (row.role, row.team_id)
            for row in session.execute(select(User.id, User.role, User.team_id).where(User.id.in_(ids.values())))
        }
        out = {subject: frozenset[str]() for subject in subjects}
        for subject, user_id in ids.items():
            if user_id in found:
                role, team_id = found[user_id]
                seen = visible_team_ids(session, parse_role(role), team_id)
                out[subject] = staff_queues(session, seen, self.default_team)
        return out

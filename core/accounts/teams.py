"""The team (setor) hierarchy: which teams a staff member sees.

Administrators see every team, supervisors their own and every team below it, everyone else their own.
Public bodies have tens of teams, not thousands: the whole tree is read in one query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.models import Team
from core.accounts.roles import Role


def descendants(edges: Iterable[tuple[int, int | None]], root: int) -> set[int]:
    """`root` and every team below it, given (id, parent_id) pairs; a cycle cannot loop forever."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for team_id, parent_id in edges:
        children[parent_id].append(team_id)
    found: set[int] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, ()))
    return found


def team_edges(db: Session) -> list[tuple[int, int | None]]:
    return [(row.id, row.parent_id) for row in db.execute(select(Team.id, Team.parent_id))]


def visible_team_ids(db: Session, role: Role, team_id: int | None) -> frozenset[int]:
    if role == "admin":
        return frozenset(team for team, _ in team_edges(db))
    if team_id is None:
        return frozenset()
    if role == "supervisor":
        return frozenset(descendants(team_edges(db), team_id))
    return frozenset({team_id})

"""The staff roles. What each one may do is in `core.accounts.permissions`."""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["admin", "supervisor", "agent", "content_editor", "evaluator", "integrator"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)


def parse_role(value: str) -> Role:
    role = value.strip().lower()
    if role not in ROLES:
        raise ValueError(f"unknown role {value!r}; roles are: {', '.join(ROLES)}")
    return role


def parse_roles(value: str) -> frozenset[Role]:
    """Comma-separated roles, as the settings hold them."""
    return frozenset(parse_role(part) for part in value.split(",") if part.strip())

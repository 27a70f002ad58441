"""Who is calling: a staff user, an integration holding a bearer token, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

PrincipalKind = Literal["staff", "integration", "system"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject: str  # "user:42", "integration:ouvidoria"
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str | None = None
    team_ids: frozenset[int] = field(default_factory=frozenset)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class TokenVerifier(Protocol):
    """Turns a bearer token into a principal, or None when the token is unknown, expired or revoked."""

    def verify(self, token: str) -> Principal | None: ...


class StaticTokenVerifier:
    """A fixed token → principal table: for tests and for a single trusted integration in development."""

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self._tokens = dict(tokens)

    def verify(self, token: str) -> Principal | None:
        return self._tokens.get(token)

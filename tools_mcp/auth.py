"""Bearer tokens for /mcp: our `TokenVerifier` (token → Principal) adapted to the MCP SDK's verifier hook."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anyio.to_thread
from mcp.server.auth.provider import AccessToken

from core.principals import Principal, PrincipalKind, StaticTokenVerifier, TokenVerifier
from domain.access import TOOL_SCOPES


class InvalidTokenTable(ValueError):
    pass


def parse_token_table(raw: str) -> dict[str, Principal]:
    """ATENDE_MCP_TOKENS: {"<token>": {"name": "ouvidoria", "scopes": ["protocols:read"], "kind": "integration"}}."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidTokenTable(f"ATENDE_MCP_TOKENS is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InvalidTokenTable("ATENDE_MCP_TOKENS must be a JSON object of token → {name, scopes}")
    table: dict[str, Principal] = {}
    for i, (token, entry) in enumerate(data.items()):
        # Errors name the entry's position, never the token.
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or len(token) < 16:
            raise InvalidTokenTable(f"entry {i}: needs a token of 16+ characters and a name")
        scopes = entry.get("scopes", [])
        unknown = sorted(set(scopes) - set(TOOL_SCOPES)) if isinstance(scopes, list) else ["(not a list)"]
        if unknown:
            known = list(TOOL_SCOPES)
            raise InvalidTokenTable(f"entry {i} ({entry['name']}): unknown scopes {unknown}; known: {known}")
        kind: PrincipalKind = "staff" if entry.get("kind") == "staff" else "integration"
        table[token] = Principal(kind=kind, subject=f"{kind}:{entry['name']}", scopes=frozenset(scopes))
    return table


def static_verifier(raw: str) -> StaticTokenVerifier:
    return StaticTokenVerifier(parse_token_table(raw))


class ChainedTokenVerifier:
    """Asks each verifier in turn (e.g. the database's tokens, then the configured static ones)."""

    def __init__(self, verifiers: Iterable[TokenVerifier]) -> None:
        self._verifiers = list(verifiers)

    def verify(self, token: str) -> Principal | None:
        for verifier in self._verifiers:
            principal = verifier.verify(token)
            if principal is not None:
                return principal
        return None


class SDKTokenVerifier:
    """The MCP SDK's `TokenVerifier` protocol over ours; the principal rides in the access token's claims."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def verify_token(self, token: str) -> AccessToken | None:
        # Ours is synchronous (a database-backed one does I/O), so it runs off the event loop.
        principal = await anyio.to_thread.run_sync(self._verifier.verify, token)
        if principal is None:
            return None
        return AccessToken(
            token=token,
            client_id=principal.subject,
            subject=principal.subject,
            scopes=sorted(principal.scopes),
            claims={"kind": principal.kind, "role": principal.role, "team_ids": sorted(principal.team_ids)},
        )


def principal_from_access_token(token: AccessToken) -> Principal:
    claims: dict[str, Any] = token.claims or {}
    kind = claims.get("kind")
    return Principal(
        kind=kind if kind in ("staff", "integration", "system") else "integration",
        subject=token.subject or token.client_id,
        scopes=frozenset(token.scopes),
        role=claims.get("role"),
        team_ids=frozenset(claims.get("team_ids") or ()),
    )


def stdio_principal(scopes: str) -> Principal:
    """Whoever runs `atende mcp serve --stdio` already has the machine: they act as the local operator, with
    the scopes ATENDE_MCP_STDIO_SCOPES grants (read-only by default)."""
    granted = frozenset(s.strip() for s in scopes.split(",") if s.strip())
    unknown = sorted(granted - set(TOOL_SCOPES))
    if unknown:
        raise InvalidTokenTable(f"ATENDE_MCP_STDIO_SCOPES: unknown scopes {unknown}; known: {list(TOOL_SCOPES)}")
    return Principal(kind="staff", subject="operator:stdio", scopes=granted)

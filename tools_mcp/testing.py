"""Test helpers shared by the tool tests and the assistant's tests: a fixed clock, a seeded domain, and calls
through an MCP client that return the structured result or the error payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mcp import Client
from sqlalchemy.orm import Session, sessionmaker

from atende.audit import AuditSink, MemoryAuditSink
from atende.conversation_keys import PROOF_META_KEY, ConversationProof
from atende.settings import Settings
from tools_mcp.clock import Clock
from tools_mcp.domain import Domain, build_domain
from tools_mcp.ratelimit import InMemoryRateLimiter, RateLimiter
from tools_mcp.server import CONVERSATION_META_KEY

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
# A Wednesday two days before a national holiday (Consciência Negra, Friday 2026-11-20).
DEFAULT_NOW = datetime(2026, 11, 18, 10, 0, tzinfo=SAO_PAULO)


@dataclass
class MovableClock:
    """A clock tests set by hand."""

    current: datetime = DEFAULT_NOW

    def __call__(self) -> datetime:
        return self.current


def make_test_domain(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    audit: AuditSink | None = None,
    clock: MovableClock | None = None,
    limiter: RateLimiter | None = None,
) -> Domain:
    return build_domain(
        sessions,
        settings,
        audit or MemoryAuditSink(),
        clock=Clock(SAO_PAULO, clock or MovableClock()),
        limiter=limiter or InMemoryRateLimiter(),
    )


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    data: dict[str, Any]

    @property
    def error(self) -> str | None:
        return None if self.ok else self.data.get("error")


async def call(
    client: Client,
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    conversation: str | None = None,
    proof: ConversationProof | None = None,
) -> ToolOutcome:
    """Calls a tool the way the assistant does (conversation id in `_meta`, signed with `proof` when given)."""
    meta: dict[str, str] | None = None
    if conversation:
        meta = {CONVERSATION_META_KEY: conversation}
        if proof is not None:
            meta[PROOF_META_KEY] = proof.sign(conversation)
    result = await client.call_tool(tool, arguments or {}, meta=meta)  # type: ignore[arg-type]
    data = result.structured_content
    if not isinstance(data, dict):
        raise AssertionError(f"{tool} returned no structured content: {result.content}")
    return ToolOutcome(not result.is_error, data)

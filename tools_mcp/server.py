"""The MCP server: the domain's operations as typed, annotated tools, and knowledge articles as resources.

The tools are module-level functions (in `tools_mcp.tools`) that reach the domain through the server's lifespan
context, a `ToolDeps`. Every tool answers with structured content. A refusal is a tool error whose payload is
`{"error": "<code>", "message": "<pt-BR text for the citizen>"}` (codes in `domain.errors`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from core.conversation_keys import ConversationProof
from core.principals import Principal, TokenVerifier
from domain.access import ASSISTANT_PRINCIPAL
from domain.wiring import Domain
from tools_mcp.auth import SDKTokenVerifier
from tools_mcp.tools import appointments, citizens, handoff, payments, protocols
from tools_mcp.tools.articles import add_article_resources
from tools_mcp.tools.base import CONVERSATION_META_KEY, Registration, ToolDeps

__all__ = ["CONVERSATION_META_KEY", "INSTRUCTIONS", "TOOLS", "ToolDeps", "build_mcp_server"]

INSTRUCTIONS = (
    "Citizen-service tools of a Brazilian municipality. Personal data (citizen, protocols, debts, appointments) "
    "is only available after citizen_verify succeeds in the same conversation. Errors carry a pt-BR message "
    "that can be shown to the citizen."
)

# In the order clients list them.
TOOLS: tuple[Registration, ...] = (
    *citizens.TOOLS,
    *protocols.TOOLS,
    *payments.TOOLS,
    *appointments.TOOLS,
    *handoff.TOOLS,
)


def lifespan(deps: ToolDeps) -> Callable[[MCPServer[ToolDeps]], AbstractAsyncContextManager[ToolDeps]]:
    """The server's lifespan: it opens nothing (the domain connects when a tool runs), it only hands `deps` on."""

    @asynccontextmanager
    async def span(_: MCPServer[ToolDeps]) -> AsyncIterator[ToolDeps]:
        yield deps

    return span


def build_mcp_server(
    domain: Domain,
    *,
    local_principal: Principal = ASSISTANT_PRINCIPAL,
    token_verifier: TokenVerifier | None = None,
    conversation_proof: ConversationProof | None = None,
    base_url: str = "http://127.0.0.1:8000",
    name: str = "atende",
) -> MCPServer[ToolDeps]:
    """The tools over `domain`.

    In-process and stdio callers are `local_principal` (by default the assistant, which may only act for the
    conversation in `_meta`); HTTP callers are whoever their bearer token names through `token_verifier`, and
    act for the conversation in `_meta` only with its `conversation_proof` signature beside it (without a
    `conversation_proof`, never).
    """
    auth: dict[str, Any] = {}
    if token_verifier is not None:
        auth = {
            "token_verifier": SDKTokenVerifier(token_verifier),
            # Tokens are issued by the body itself (no OAuth server); the issuer is required by the SDK's model.
            "auth": AuthSettings(issuer_url=base_url, resource_server_url=None),  # type: ignore[arg-type]
        }
    deps = ToolDeps(domain=domain, local_principal=local_principal, conversation_proof=conversation_proof)
    server: MCPServer[ToolDeps] = MCPServer(
        name=name, instructions=INSTRUCTIONS, version="0.1.0", lifespan=lifespan(deps), **auth
    )
    for fn, hints in TOOLS:
        # The docstring, dedented, is the description the model reads.
        server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), annotations=hints)
    add_article_resources(server, domain)
    return server

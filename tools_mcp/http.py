"""The MCP server over streamable HTTP, mounted in the Atende app at /mcp.

Stateless with JSON responses: any app process answers any request (no session affinity behind a load
balancer), and the tools never call back into the client. Bearer tokens are checked by the SDK's auth
middleware with our TokenVerifier (see `tools_mcp.auth`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from core.i18n import t

if TYPE_CHECKING:
    from mcp.server import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings

MCP_PATH = "/mcp"


def transport_security(allowed_hosts: str) -> TransportSecuritySettings:
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()]
    if not hosts:
        # Every request needs a bearer token, which a DNS-rebound browser page does not have.
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=[])


@asynccontextmanager
async def serve_mcp_http(server: MCPServer, *, allowed_hosts: str = "") -> AsyncIterator[ASGIApp]:
    """The ASGI app for /mcp, valid while the block runs: the SDK's session manager lives exactly that long,
    so this belongs inside the host app's lifespan."""
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(allowed_hosts),
    )
    async with server.session_manager.run():
        yield app


class MountedMCP:
    """The /mcp route of the host app: hands requests to the ASGI app its lifespan put in `app.state.mcp_asgi`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target: ASGIApp | None = getattr(scope["app"].state, "mcp_asgi", None)
        if target is None:
            await JSONResponse({"code": "unavailable", "detail": t("tools.error.unavailable")}, 503)(
                scope, receive, send
            )
            return
        # The SDK's Starlette app writes itself into scope["app"] (and its own route into scope["route"]); on
        # the shared scope, the host's middlewares that run after the response (the audit trail) would look up
        # the host's route table on the MCP app and fail. It gets a scope of its own.
        await target(dict(scope), receive, send)

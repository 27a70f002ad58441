"""ToolSession over the MCP SDK: in-process (the embedded default) or streamable HTTP (a remote server).

The respond pipeline is synchronous and runs in worker threads, while the SDK is async. The session owns one
event loop in a thread of its own (an anyio blocking portal) for its whole life: the MCP client is entered
there once in `warm_up()` and every call is submitted to it, so no thread ever runs a second loop and the
connection is reused across turns and threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from assistant.tools.session import (
    CONVERSATION_META_KEY,
    ToolResult,
    ToolSpec,
    ToolUnavailable,
    parse_payload,
    result_from,
)
from core.conversation_keys import PROOF_META_KEY

if TYPE_CHECKING:
    from mcp import Client
    from mcp.server import MCPServer

    from core.conversation_keys import ConversationProof

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractAsyncContextManager["Client"]]


class McpToolSession:
    """A ToolSession over an MCP client that `connect` opens; see `in_process` and `over_http`."""

    def __init__(
        self,
        connect: Connect,
        *,
        timeout_s: float = 30.0,
        label: str = "mcp",
        proof: ConversationProof | None = None,
    ) -> None:
        self._connect = connect
        self._proof = proof  # signs the conversation id of each call; a remote server accepts no id without it
        self._timeout_s = timeout_s
        self._label = label
        self._lock = threading.Lock()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._client_cm: AbstractContextManager[Client] | None = None
        self._client: Client | None = None
        self._tools: list[ToolSpec] | None = None

    @classmethod
    def in_process(
        cls, server: MCPServer, *, timeout_s: float = 30.0, proof: ConversationProof | None = None
    ) -> McpToolSession:
        """Talk to a server object living in this process, without sockets or JSON framing."""

        def connect() -> AbstractAsyncContextManager[Client]:
            from mcp import Client

            return Client(server)

        return cls(connect, timeout_s=timeout_s, label="in-process", proof=proof)

    @classmethod
    def over_http(
        cls, url: str, token: str, *, timeout_s: float = 30.0, proof: ConversationProof | None = None
    ) -> McpToolSession:
        """Talk to a server at `url` (streamable HTTP) presenting `token` as a bearer token.

        `proof` must share the server's secret key (ATENDE_SECRET_KEY): the server refuses a conversation id
        that comes without its signature.
        """

        @asynccontextmanager
        async def connect() -> AsyncIterator[Client]:
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            headers = {"Authorization": f"Bearer {token}"} if token else None
            async with (
                create_mcp_http_client(headers=headers) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                yield client

        return cls(connect, timeout_s=timeout_s, label=url, proof=proof)

    # Lifecycle

    def warm_up(self) -> None:
        with self._lock:
            self._ensure_connected()

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def _ensure_connected(self) -> Client:
        if self._client is not None:
            return self._client
        if self._portal is None:
            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
        try:
            self._client_cm = self._portal.wrap_async_context_manager(self._connect())
            self._client = self._client_cm.__enter__()
        except Exception as exc:
            self._client_cm = None
            log.warning("MCP server %s unreachable: %s", self._label, exc)
            raise ToolUnavailable(f"cannot connect to the MCP server {self._label}: {exc}") from exc
        return self._client

    def _disconnect(self) -> None:
        client_cm, self._client_cm, self._client = self._client_cm, None, None
        portal_cm, self._portal_cm, self._portal = self._portal_cm, None, None
        if client_cm is not None:
            try:
                client_cm.__exit__(None, None, None)
            except Exception as exc:  # a dead connection may fail to close; the portal still must
                log.warning("closing the MCP client %s failed: %s", self._label, exc)
        if portal_cm is not None:
            portal_cm.__exit__(None, None, None)

    def _portal_and_client(self) -> tuple[BlockingPortal, Client]:
        with self._lock:
            client = self._ensure_connected()
            assert self._portal is not None
            return self._portal, client

    # Tools

    def list_tools(self) -> list[ToolSpec]:
        if self._tools is not None:
            return list(self._tools)
        portal, client = self._portal_and_client()

        async def fetch() -> list[ToolSpec]:
            with anyio.fail_after(self._timeout_s):
                listed = await client.list_tools()
            specs = []
            for tool in listed.tools:
                notes = tool.annotations
                specs.append(
                    ToolSpec(
                        name=tool.name,
                        description=tool.description or "",
                        input_schema=dict(tool.input_schema),
                        read_only=bool(notes and notes.read_only_hint),
                        destructive=bool(notes and notes.destructive_hint and not notes.read_only_hint),
                    )
                )
            return specs

        try:
            self._tools = portal.call(fetch)
        except TimeoutError as exc:
            raise ToolUnavailable(f"listing tools timed out after {self._timeout_s:.0f}s", timed_out=True) from exc
        except Exception as exc:
            self._drop_broken_connection()
            raise ToolUnavailable(f"listing tools failed: {exc}") from exc
        return list(self._tools)

    def call_tool(self, name: str, arguments: Mapping[str, Any], *, conversation_id: str) -> ToolResult:
        portal, client = self._portal_and_client()

        async def call() -> ToolResult:
            with anyio.fail_after(self._timeout_s):
                meta: Any = {CONVERSATION_META_KEY: conversation_id}
                if self._proof is not None:
                    meta[PROOF_META_KEY] = self._proof.sign(conversation_id)
                result = await client.call_tool(name, dict(arguments), meta=meta)
            texts = [block.text for block in result.content if getattr(block, "type", "") == "text"]  # type: ignore[union-attr]
            structured = result.structured_content if isinstance(result.structured_content, dict) else None
            return result_from(parse_payload(structured, texts), is_error=result.is_error)

        try:
            return portal.call(call)
        except TimeoutError as exc:
            log.warning("tool %s timed out after %.0fs", name, self._timeout_s)
            raise ToolUnavailable(f"{name} timed out after {self._timeout_s:.0f}s", timed_out=True) from exc
        except Exception as exc:
            log.warning("tool %s failed on %s: %s", name, self._label, exc)
            self._drop_broken_connection()
            raise ToolUnavailable(f"{name} failed: {exc}") from exc

    def _drop_broken_connection(self) -> None:
        # The next call reconnects: a restarted remote server must not need an app restart.
        with self._lock:
            self._disconnect()

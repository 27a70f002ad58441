"""Knowledge articles as MCP resources: public ones for everyone, internal ones only for staff with kb:read."""

from __future__ import annotations

import json

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from domain.errors import DomainError
from domain.wiring import Domain
from tools_mcp.tools.base import ToolContext, ToolDeps, caller_of, deps_of


async def knowledge_article(id: str, ctx: ToolContext) -> str:
    article = await anyio.to_thread.run_sync(deps_of(ctx).domain.articles.get, id)
    if article is None:
        raise ResourceNotFoundError(f"unknown article {id}")
    if article.audience != "public":
        try:
            caller = caller_of(ctx)
        except DomainError as exc:
            raise ResourceNotFoundError(f"unknown article {id}") from exc
        if "kb:read" not in caller.principal.scopes:
            # To everyone else an internal article does not exist.
            raise ResourceNotFoundError(f"unknown article {id}")
    return f"# {article.title}\n\n{article.text}" if not article.text.lstrip().startswith("# ") else article.text


def add_article_resources(server: MCPServer[ToolDeps], domain: Domain) -> None:
    server.resource(
        "kb://articles/{id}",
        name="knowledge_article",
        description="A knowledge-base article (Markdown). Internal articles only for staff with kb:read.",
        mime_type="text/markdown",
    )(knowledge_article)

    # The SDK gives a resource without URI parameters no Context, so no lifespan: this one holds the domain.
    @server.resource(
        "kb://articles",
        name="knowledge_articles",
        description="Ids of the public knowledge-base articles, one JSON list.",
        mime_type="application/json",
    )
    async def knowledge_articles() -> str:
        ids = await anyio.to_thread.run_sync(domain.articles.ids)
        return json.dumps(ids, ensure_ascii=False)

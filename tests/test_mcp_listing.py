"""What the MCP server publishes: its tools' names, descriptions, annotations and JSON schemas, and its resources.

Clients and models read these, so they change only on purpose. After such a change, rewrite the snapshot with
`ATENDE_UPDATE_SNAPSHOTS=1 pytest tests/test_mcp_listing.py` and review its diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from core.db import make_engine, make_session_factory
from core.settings import Settings
from domain.wiring import Domain
from tools_mcp.server import build_mcp_server
from tools_mcp.testing import make_test_domain

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "mcp_listing.json"


@pytest.fixture
def domain(tmp_path: Path) -> Iterator[Domain]:
    # Listing touches no table: the database is never migrated.
    engine = make_engine(f"sqlite:///{(tmp_path / 'atende.db').as_posix()}")
    knowledge = Path("knowledge").resolve()
    settings = Settings(environment="test", data_dir=tmp_path, knowledge_dir=knowledge, _env_file=None)  # type: ignore[call-arg]
    yield make_test_domain(make_session_factory(engine), settings)
    engine.dispose()


def _dump(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]


def _snapshot(listing: dict[str, Any]) -> dict[str, Any]:
    if os.environ.get("ATENDE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(listing, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    return snapshot


async def test_the_server_publishes_exactly_the_snapshotted_tools_and_resources(domain: Domain) -> None:
    async with Client(build_mcp_server(domain)) as client:
        tools = await client.list_tools()
        resources = await client.list_resources()
        templates = await client.list_resource_templates()
        server, instructions = client.server_info, client.instructions
    assert tools.next_cursor is None
    assert resources.next_cursor is None
    assert templates.next_cursor is None
    listing: dict[str, Any] = {
        "server": server.model_dump(mode="json", by_alias=True, exclude_none=True) if server else None,
        "instructions": instructions,
        "tools": _dump(tools.tools),
        "resources": _dump(resources.resources),
        "resource_templates": _dump(templates.resource_templates),
    }
    expected = _snapshot(listing)
    # Tool by tool first, so a failure names the tool whose contract moved.
    assert [t["name"] for t in listing["tools"]] == [t["name"] for t in expected["tools"]]
    for published, snapshotted in zip(listing["tools"], expected["tools"], strict=True):
        assert published == snapshotted, published["name"]
    assert listing == expected

"""The assistant using a remote MCP server over streamable HTTP with a bearer token (a real uvicorn server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import KNOWLEDGE
from helpers import respond, served
from pydantic import SecretStr

from assistant.testing import ScriptedChatModel
from assistant.tools.mcp_session import McpToolSession
from assistant.tools.session import ToolUnavailable
from atende.app import create_app
from atende.services import Services, build_services
from core.settings import Settings
from domain.seed import seed

pytestmark = pytest.mark.integration

TOKEN = "tok-remote-assistant-0123456789"


@dataclass(frozen=True)
class Remote:
    url: str
    data_dir: Path


def _settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        knowledge_dir=KNOWLEDGE,
        vector_store="memory",
        embedding_backend="hashing",
        tool_routing="rules",
        mcp_tokens=SecretStr(json.dumps({TOKEN: {"name": "chatbot", "scopes": ["assistant"]}})),
        _env_file=None,  # type: ignore[call-arg]
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    data_dir = tmp_path_factory.mktemp("tools-remote")
    services = build_services(_settings(data_dir), model=ScriptedChatModel([]))
    services.warm_up(model=False)
    assert services.domain is not None
    seed(services.domain)
    try:
        with served(create_app(services=services, warm_model=False)) as url:
            yield Remote(f"{url}/mcp", data_dir)
    finally:
        services.close()


@pytest.fixture
def assistant_services(remote: Remote) -> Iterator[Services]:
    """A second app process: same database, tools reached over HTTP instead of in-process."""
    services = build_services(
        _settings(remote.data_dir, mcp_remote_url=remote.url, mcp_remote_token=SecretStr(TOKEN)),
        model=ScriptedChatModel([]),
    )
    services.warm_up(model=False)
    yield services
    services.close()


def test_the_http_session_lists_the_servers_tools_with_their_annotations(remote: Remote) -> None:
    session = McpToolSession.over_http(remote.url, TOKEN, timeout_s=30)
    try:
        tools = {spec.name: spec for spec in session.list_tools()}
    finally:
        session.close()

    assert {"citizen_verify", "payment_list_debts", "appointment_cancel"} <= set(tools)
    assert tools["appointment_cancel"].destructive
    assert tools["payment_list_debts"].read_only


def test_a_wrong_token_is_refused_and_reported_as_an_unavailable_tool_server(remote: Remote) -> None:
    session = McpToolSession.over_http(remote.url, "not-a-token", timeout_s=30)
    try:
        with pytest.raises(ToolUnavailable) as raised:
            session.call_tool("protocol_status", {"number": "2026-000001"}, conversation_id="x")
    finally:
        session.close()
    assert not raised.value.timed_out


def test_the_assistant_verifies_and_lists_debts_through_the_remote_server(assistant_services: Services) -> None:
    conversation = assistant_services.store.create_conversation("web").id
    respond(assistant_services, conversation, "quero ver meus débitos")
    respond(assistant_services, conversation, "983.690.060-86")
    reply = respond(assistant_services, conversation, "15/03/1985")

    assert [c["name"] for c in reply.tool_calls] == ["citizen_verify", "payment_list_debts"]
    assert all(c["ok"] for c in reply.tool_calls)
    assert "R$" in reply.answer

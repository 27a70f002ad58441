"""The role × route matrix: every route of the fully built app is declared, and answers each caller exactly as
core/accounts/permissions.py says (401 anonymous, 403 without the permission, through otherwise)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

import pytest
from conftest import production_values
from fastapi import APIRouter
from fastapi.testclient import TestClient

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.deps import RequirePermission
from atende.services import Services, build_services
from core.accounts import permissions
from core.accounts.access import (
    DeclaredRoute,
    check_declared_routes,
    iter_routes,
    undeclared_message,
    undeclared_routes,
    unprotectable_routes,
)
from core.accounts.roles import ROLES, Role
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly, with_settings
from core.principals import Principal
from core.settings import Settings

DENIED = {401, 403}
# The permission table written out by hand, role by role: changing who may do what must change this too, so
# the change is seen in review. Citizens' personal data stays with the staff who serve them.
EXPECTED_ACTIONS: dict[Role, set[str]] = {
    "admin": {
        "appointment.read", "assistant.use", "audit.read", "citizen.read", "conversation.read", "eval.read",
        "eval.run", "kb.edit", "kb.read", "lgpd.erase", "lgpd.export", "protocol.read", "reports.read",
        "teams.manage", "teams.read", "tokens.approve", "tokens.manage", "users.manage", "users.read",
        "whatsapp.manage", "whatsapp.read", "consent.read", "consent.write", "privacy.manage", "saved_replies.manage",
        "agents.manage",
    },
    "supervisor": {
        "appointment.read", "appointment.write", "assistant.use", "citizen.pii.read", "citizen.read",
        "citizen.write", "conversation.read", "conversation.reply", "eval.read", "kb.read", "payment.read",
        "protocol.read", "protocol.write", "reports.read", "teams.read", "users.read", "whatsapp.manage",
        "whatsapp.read", "whatsapp.send", "lgpd.export", "consent.read", "consent.write", "saved_replies.manage",
        "conversation.supervise", "agents.manage",
    },
    "agent": {
        "appointment.read", "appointment.write", "assistant.use", "citizen.pii.read", "citizen.read",
        "citizen.write", "conversation.read", "conversation.reply", "kb.read", "payment.read", "protocol.read",
        "protocol.write", "whatsapp.send", "consent.read", "consent.write",
    },
    "content_editor": {"assistant.use", "eval.read", "kb.edit", "kb.read"},
    "evaluator": {"assistant.use", "eval.read", "eval.run", "kb.read"},
    "integrator": {"kb.read", "tokens.manage"},
}  # fmt: skip
# Path parameters get ids that exist nowhere: an allowed call reaches the handler and finds nothing.
PARAMETER = re.compile(r"\{[^}]+\}")


@pytest.fixture(scope="module")
def matrix_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    # One app for the whole matrix: the calls use ids that exist nowhere, so no call changes another's result.
    base = tmp_path_factory.mktemp("matrix")
    settings = Settings(
        environment="test",
        data_dir=base / "var",
        vector_store="memory",
        embedding_backend="hashing",
        totp_required_roles="",
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings, model=ScriptedChatModel([]))
    services.warm_up(model=False)
    yield services
    services.close()


@pytest.fixture(scope="module")
def app_client(matrix_services: Services) -> Iterator[TestClient]:
    app = create_app(services=matrix_services, warm_model=False)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def accounts(matrix_services: Services, app_client: TestClient) -> Accounts:
    return rewire(matrix_services, clock=ManualClock())


@pytest.fixture(scope="module")
def staff(accounts: Accounts) -> dict[Role, int]:
    return {role: create_user(accounts, f"matrix-{role.replace('_', '-')}", role).id for role in ROLES}


def declared(client: TestClient) -> list[DeclaredRoute]:
    return list(iter_routes(client.app))  # type: ignore[arg-type]


def staff_routes(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, path, action) for every route checked by role, in a stable order."""
    rows = []
    for route in declared(client):
        if route.access in permissions.ACTIONS:
            rows.append((route.method, route.path, route.access))
    return sorted(set(rows))


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    url = PARAMETER.sub("999999", path)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, json=body, headers=headers or {}).status_code


# --- the table covers the app ---------------------------------------------------------------------------


def test_every_route_of_the_app_declares_its_access(app_client: TestClient) -> None:
    missing = undeclared_routes(app_client.app)  # type: ignore[arg-type]
    assert not missing, undeclared_message(missing)


def test_the_table_declares_no_route_the_app_does_not_have(app_client: TestClient) -> None:
    served = {(r.method, r.path) for r in declared(app_client)}
    stale = sorted(set(permissions.ROUTES) - served)
    assert not stale, f"remove these from core/accounts/permissions.py ROUTES (no such route): {stale}"
    mounts = {r.path for r in declared(app_client) if r.method == "*"}
    assert set(permissions.MOUNTS) <= mounts


def test_only_public_routes_bypass_the_permission_dependency(app_client: TestClient) -> None:
    bypassing = unprotectable_routes(app_client.app)  # type: ignore[arg-type]
    assert not bypassing, f"plain Starlette routes and mounts cannot be protected; use an APIRouter: {bypassing}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_holds_exactly_the_reviewed_actions(role: Role) -> None:
    assert set(permissions.actions_of(role)) == EXPECTED_ACTIONS[role]


def test_every_action_in_the_table_belongs_to_at_least_one_role() -> None:
    orphans = [name for name, action in permissions.ACTIONS.items() if not action.roles]
    assert not orphans


# --- who gets through ----------------------------------------------------------------------------------


def test_every_staff_route_refuses_an_anonymous_caller(app_client: TestClient) -> None:
    app_client.cookies.clear()
    guarded = [
        r
        for r in declared(app_client)
        if r.access not in (permissions.PUBLIC, permissions.LOGIN) and r.method not in ("*", "WEBSOCKET")
    ]
    assert guarded
    answers = {f"{r.method} {r.path}": call(app_client, r.method, r.path) for r in guarded}
    assert {route: status for route, status in answers.items() if status != 401} == {}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_routes_its_actions_allow(
    role: Role, app_client: TestClient, accounts: Accounts, staff: dict[Role, int]
) -> None:
    app_client.cookies.clear()
    user = accounts.directory.require(staff[role])
    csrf = sign_in_directly(app_client, accounts, user)
    wrong = {}
    for method, path, action in staff_routes(app_client):
        status = call(app_client, method, path, {"X-CSRF-Token": csrf})
        allowed = role in permissions.ACTIONS[action].roles
        if (status not in DENIED) != allowed or (not allowed and status != 403):
            wrong[f"{method} {path} ({action})"] = status
    assert wrong == {}, f"{role}: answers that contradict the permission table"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_its_own_account_routes(
    role: Role, app_client: TestClient, accounts: Accounts, staff: dict[Role, int]
) -> None:
    app_client.cookies.clear()
    sign_in_directly(app_client, accounts, accounts.directory.require(staff[role]))

    assert app_client.get("/api/auth/me").json()["user"]["role"] == role


def test_integration_tokens_reach_exactly_the_routes_their_scopes_allow(
    app_client: TestClient, accounts: Accounts
) -> None:
    app_client.cookies.clear()
    wrong = {}
    for scope in sorted(permissions.SCOPES):
        token = accounts.tokens.issue(name=scope, scopes=[scope], created_by="test", integration="matrix").token
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, action in staff_routes(app_client):
            status = call(app_client, method, path, headers)
            allowed = permissions.ACTIONS[action].scope == scope
            if (status not in DENIED) != allowed:
                wrong[f"{scope}: {method} {path}"] = status
    assert wrong == {}


def test_a_staff_members_token_never_exceeds_their_role(
    app_client: TestClient, accounts: Accounts, staff: dict[Role, int]
) -> None:
    app_client.cookies.clear()
    agent = staff["agent"]
    token = accounts.tokens.issue(name="t", scopes=["users:admin", "kb:read"], created_by="test", user_id=agent).token
    headers = {"Authorization": f"Bearer {token}"}

    assert app_client.get("/api/users", headers=headers).status_code == 403
    assert app_client.get("/api/teams", headers=headers).status_code == 403


def test_a_bearer_call_needs_no_csrf_token_but_a_cookie_call_does(
    app_client: TestClient, accounts: Accounts, staff: dict[Role, int]
) -> None:
    app_client.cookies.clear()
    token = accounts.tokens.issue(name="t", scopes=["users:admin"], created_by="test", integration="csrf-check").token
    assert (
        app_client.post(
            "/api/teams", json={"name": "Por token"}, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 201
    )

    csrf = sign_in_directly(app_client, accounts, accounts.directory.require(staff["admin"]))
    refused = app_client.post("/api/teams", json={"name": "Sem token CSRF"})
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_invalid")
    assert (
        app_client.post("/api/teams", json={"name": "Com token CSRF"}, headers={"X-CSRF-Token": csrf}).status_code
        == 201
    )


# --- undeclared routes ---------------------------------------------------------------------------------


def test_a_route_missing_from_the_table_is_refused_and_named_in_the_failure(test_settings: Settings) -> None:
    services = build_services(with_settings(test_settings, totp_required_roles=""), model=ScriptedChatModel([]))
    app = create_app(services=services, warm_model=False)
    extra = APIRouter()

    @extra.get("/api/novidade/{item_id}")
    def novidade(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.include_router(extra)
    try:
        missing = undeclared_routes(app)
        with TestClient(app, base_url="https://testserver") as client:
            answer = client.get("/api/novidade/1")
    finally:
        services.close()

    assert [(r.method, r.path) for r in missing] == [("GET", "/api/novidade/{item_id}")]
    assert '("GET", "/api/novidade/{item_id}"): "<action>"' in undeclared_message(missing)
    assert answer.status_code == 403


def test_production_refuses_to_start_with_an_undeclared_route(app_client: TestClient) -> None:
    app = app_client.app
    extra = APIRouter()

    @extra.delete("/api/esquecida")
    def esquecida() -> None:
        return None

    production = Settings(**production_values(), _env_file=None)  # type: ignore[arg-type]
    app.include_router(extra)  # type: ignore[attr-defined]
    try:
        with pytest.raises(RuntimeError, match=r'\("DELETE", "/api/esquecida"\)'):
            check_declared_routes(app, production)  # type: ignore[arg-type]
    finally:
        app.router.routes.pop()  # type: ignore[attr-defined]
        app.state.route_index = None  # type: ignore[attr-defined]


def test_require_permission_adds_a_further_check_inside_a_declared_route(
    test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(with_settings(test_settings, totp_required_roles=""), model=ScriptedChatModel([]))
    services.warm_up(model=False)
    accounts = rewire(services, clock=ManualClock())
    app = create_app(services=services, warm_model=False)
    extra = APIRouter()

    @extra.get("/api/citizens/{citizen_id}/cpf")
    def cpf(citizen_id: int, principal: Annotated[Principal, RequirePermission("citizen.pii.read")]) -> dict[str, str]:
        return {"by": principal.subject}

    app.include_router(extra)
    monkeypatch.setitem(permissions.ROUTES, ("GET", "/api/citizens/{citizen_id}/cpf"), "citizen.read")
    admin = create_user(accounts, "pii-admin", "admin")
    agent = create_user(accounts, "pii-agent", "agent")
    try:
        with TestClient(app, base_url="https://testserver") as client:
            sign_in_directly(client, accounts, admin)
            as_admin = client.get("/api/citizens/1/cpf").status_code
            client.cookies.clear()
            sign_in_directly(client, accounts, agent)
            as_agent = client.get("/api/citizens/1/cpf")
    finally:
        services.close()

    # Administrators may look citizens up (masked) but not read their personal data; agents may.
    assert as_admin == 403
    assert as_agent.json() == {"by": f"user:{agent.id}"}

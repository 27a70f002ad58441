"""Every route the running app serves, probed over HTTP by each kind of caller the permission table tells apart:
anonymous, each staff role, a token without the route's scope, an expired or revoked token, another citizen.

The routes come from the app itself (core.accounts.access.iter_routes over the permission table) and from its
OpenAPI document, so a new route is probed without touching this file. Path parameters get ids that exist:
a refusal must come from the access rules, not from an unknown id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from core.accounts import permissions
from core.accounts.access import iter_routes
from core.accounts.roles import ROLES, Role

from .conftest import Citizen, LiveApp

pytestmark = pytest.mark.integration

PARAMETER = re.compile(r"\{([^}]+)\}")
DENIED = {401, 403}
OPEN_LEVELS = {permissions.PUBLIC, permissions.LOGIN}  # served to callers who have not signed in, by design
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
CITIZEN_ROUTES = "/api/conversations/{conversation_id}"
NOT_FOUND = "conversation_not_found"


@dataclass(frozen=True, order=True)
class Route:
    method: str
    path: str  # the template, "/api/users/{user_id}"
    access: str | None  # an action, an access level, or None when the permission table lacks it

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.access})"


def openapi_operations(live: LiveApp) -> set[tuple[str, str]]:
    document = live.request("GET", "/openapi.json").json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in HTTP_METHODS
    }


def every_route(live: LiveApp) -> list[Route]:
    """The app's routes and its OpenAPI operations, each with its declared access; `*` routes (ASGI apps such as
    /mcp, mounts) are probed with POST and GET."""
    found: dict[tuple[str, str], str | None] = {}
    for declared in iter_routes(live.app):
        if declared.method == "WEBSOCKET":
            continue
        methods = ["GET", "POST"] if declared.method == "*" else [declared.method]
        for method in methods:
            found[(method, declared.path)] = declared.access
    for method, path in openapi_operations(live):
        found.setdefault((method, path), permissions.route_access(method, path))
    return sorted(Route(method, path, access) for (method, path), access in found.items())


@dataclass
class Ids:
    """Ids that exist in the running app, to fill path parameters with."""

    values: dict[str, str]

    def fill(self, path: str) -> str:
        return PARAMETER.sub(lambda m: self.values.get(m.group(1), "1"), path)


@pytest.fixture(scope="module")
def ids(live: LiveApp) -> Ids:
    conversation = Citizen(live).waiting_for_a_person("Quero falar com um atendente. Meu CPF é 529.982.247-25")
    agent = live.user("agent", team="atendimento")
    token = live.request("GET", "/api/tokens", headers=live.as_role("admin")).json()["tokens"]
    return Ids(
        {
            "conversation_id": conversation,
            "user_id": str(agent.id),
            "subject": agent.subject,
            "team_id": str(live.team("atendimento")),
            "token_id": str(token[0]["id"]) if token else "1",
            "kind": "MATRICULA",
            "provider": "govbr",
            "name": "console.js",
            "doc_id": live.article_id,
        }
    )


@pytest.fixture(scope="module")
def routes(live: LiveApp) -> list[Route]:
    return every_route(live)


def probe(
    live: LiveApp, route: Route, ids: Ids, headers: dict[str, str] | None = None, *, source: str = "127.0.0.1"
) -> httpx.Response:
    body: Any = {} if route.method in ("POST", "PUT", "PATCH") else None
    return live.request(route.method, ids.fill(route.path), headers=headers, json=body, source=source)


def described(answers: dict[Route, httpx.Response]) -> dict[str, str]:
    return {str(route): f"{answer.status_code} {answer.text[:120]}" for route, answer in answers.items()}


# --- the table covers the app ----------------------------------------------------------------------------------


def test_every_operation_in_the_openapi_document_is_declared_in_the_permission_table(live: LiveApp) -> None:
    undeclared = sorted(op for op in openapi_operations(live) if permissions.route_access(*op) is None)
    assert undeclared == []


def test_the_probes_cover_every_route_of_the_permission_table(routes: list[Route]) -> None:
    probed = {(r.method, r.path) for r in routes}
    declared = {(m if m != "*" else "POST", p) for m, p in permissions.ROUTES}
    assert declared - probed == set()


# --- anonymous ---------------------------------------------------------------------------------------------------


def test_an_anonymous_caller_is_refused_on_every_route_that_is_not_public(
    live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    guarded = [r for r in routes if r.access not in OPEN_LEVELS]
    assert len(guarded) > 50
    stranger = live.new_address()
    answers = {r: probe(live, r, ids, source=stranger) for r in guarded}
    assert described({r: a for r, a in answers.items() if a.status_code not in DENIED}) == {}


def test_public_and_sign_in_routes_never_answer_an_anonymous_caller_with_a_server_error(
    live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    open_routes = [r for r in routes if r.access in OPEN_LEVELS]
    stranger = live.new_address()
    answers = {r: probe(live, r, ids, source=stranger) for r in open_routes}
    assert described({r: a for r, a in answers.items() if a.status_code >= 500}) == {}


def test_mcp_refuses_a_caller_without_a_token(live: LiveApp) -> None:
    answer = live.mcp(None, "kb_search", {"query": "IPTU"})

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


# --- staff by role -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_refused_on_every_route_whose_action_it_lacks(
    role: Role, live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    lacking = [r for r in routes if r.access in permissions.ACTIONS and role not in permissions.ACTIONS[r.access].roles]
    headers = live.as_role(role)
    answers = {r: probe(live, r, ids, headers) for r in lacking}
    assert described({r: a for r, a in answers.items() if a.status_code != 403}) == {}


@pytest.mark.parametrize("role", ROLES)
def test_no_route_answers_a_signed_in_member_of_any_role_with_a_server_error(
    role: Role, live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    # Every route, allowed or not; unsafe methods on allowed routes get an empty body, so they stop at validation.
    headers = live.as_role(role)
    safe = [r for r in routes if r.method == "GET" and "/events" not in r.path and r.path != "/mcp"]
    answers = {r: probe(live, r, ids, headers) for r in safe}
    assert described({r: a for r, a in answers.items() if a.status_code >= 500}) == {}


# --- tokens --------------------------------------------------------------------------------------------------------


def test_a_token_without_the_routes_scope_is_refused_on_every_route(
    live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    by_scope: dict[str, list[Route]] = {}
    for r in routes:
        if r.access in permissions.ACTIONS:
            by_scope.setdefault(permissions.ACTIONS[r.access].scope, []).append(r)
    wrong: dict[str, str] = {}
    for scope, scoped in sorted(by_scope.items()):
        others = sorted(permissions.SCOPES - {scope})
        headers = {"Authorization": f"Bearer {live.admin_token(others, integration='sem-' + scope.replace(':', '-'))}"}
        for r in scoped:
            answer = probe(live, r, ids, headers)
            if answer.status_code != 403:
                wrong[f"{r} without {scope}"] = f"{answer.status_code} {answer.text[:120]}"
    assert wrong == {}


@pytest.mark.parametrize("state", ["expired", "revoked"])
def test_an_expired_or_revoked_token_is_refused_on_every_route_that_needs_one(
    state: str, live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    scopes = sorted(permissions.SCOPES)
    name = f"todos-{state}"
    token = (
        live.expired_token(scopes, integration=name)
        if state == "expired"
        else live.revoked_token(scopes, integration=name)
    )
    headers = {"Authorization": f"Bearer {token}"}
    guarded = [r for r in routes if r.access not in OPEN_LEVELS]
    answers = {r: probe(live, r, ids, headers) for r in guarded}
    assert described({r: a for r, a in answers.items() if a.status_code != 401}) == {}


# --- another citizen (the chat key) --------------------------------------------------------------------------------


def test_another_citizen_is_told_every_conversation_route_of_someone_elses_conversation_does_not_exist(
    live: LiveApp, routes: list[Route], ids: Ids
) -> None:
    victim = Ids({**ids.values, "conversation_id": Citizen(live).waiting_for_a_person()})
    stranger = Citizen(live)
    stranger.start()  # a citizen with a chat of their own, and its key
    theirs = [r for r in routes if r.path.startswith(CITIZEN_ROUTES)]
    assert len(theirs) >= 7
    answers = {r: stranger.request(r.method, victim.fill(r.path), json=citizen_body(r)) for r in theirs}
    assert described({r: a for r, a in answers.items() if (a.status_code, code_of(a)) != (404, NOT_FOUND)}) == {}


def citizen_body(route: Route) -> Any:
    """A valid body for the citizen's routes, so only the chat key can make the difference."""
    if route.method in ("GET", "DELETE"):
        return None
    if route.path.endswith(("/messages", "/stream")):
        return {"text": "olá"}
    if route.path.endswith("/survey"):
        return {"score": 1}
    return {}


def code_of(answer: httpx.Response) -> str | None:
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return None
    body = answer.json()
    return body.get("code") if isinstance(body, dict) else None

"""A conversation id is not a credential: only the browser holding the conversation's chat key (an HttpOnly cookie)
reaches it through /api/conversations/{id}…, and other channels' conversations never do."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from atende.app import create_app
from atende.services import Services
from channels.webchat.deps import citizen_conversation
from channels.webchat.testing import chat_key_of, web_conversation
from core.accounts.access import iter_routes
from core.accounts.testing import ManualClock, rewire, set_cookie, with_settings
from core.i18n import t
from core.models import Conversation

CPF = "529.982.247-25"
PERSONAL = f"Quero falar com um atendente. Meu CPF é {CPF}, nasci em 15/03/1985, fone (11) 98765-4321"
HTTPS = "https://testserver"
# Every citizen route under a conversation id, with a body each accepts from its owner.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("POST", "/messages", {"text": "Qual o meu CPF?"}),
    ("POST", "/messages/stream", {"text": "Qual o meu CPF?"}),
    ("POST", "/handoff", None),
    ("GET", "/handoff", None),
    ("DELETE", "/handoff", None),
    ("POST", "/survey", {"score": 1, "comment": "péssimo"}),
]


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url=HTTPS) as client:
        yield client


@pytest.fixture
def stranger(app: TestClient) -> Iterator[TestClient]:
    """Another browser with a chat key of its own (it started a conversation too), but not the citizen's."""
    with TestClient(app.app, base_url=HTTPS) as other:
        assert other.post("/api/conversations").status_code == 201
        yield other


def citizen_with_personal_data(app: TestClient) -> str:
    cid: str = app.post("/api/conversations").json()["id"]
    asked = app.post(f"/api/conversations/{cid}/messages", json={"text": PERSONAL})
    assert asked.json()["decision"] == "handoff"
    return cid


def send(client: TestClient, method: str, path: str, body: dict[str, Any] | None, **headers: str) -> Any:
    return client.request(method, path, json=body, headers=headers)


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404
    assert response.json() == {"code": "conversation_not_found", "detail": t("error.conversation_not_found")}
    assert CPF not in response.text


@pytest.mark.parametrize(("method", "suffix", "body"), ROUTES)
def test_another_browser_gets_the_unknown_conversation_404_on_every_citizen_route(
    app: TestClient, stranger: TestClient, services: Services, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    cid = citizen_with_personal_data(app)
    before = [(m.role, m.text) for m in services.store.list_messages(cid)]

    response = send(stranger, method, f"/api/conversations/{cid}{suffix}", body)
    unknown = send(stranger, method, f"/api/conversations/{'0' * 32}{suffix}", body)

    assert_not_found(response)
    assert response.json() == unknown.json()
    assert [(m.role, m.text) for m in services.store.list_messages(cid)] == before
    assert services.store.get_conversation(cid).state == "waiting"  # type: ignore[union-attr]


def test_the_owner_reads_their_own_messages_and_leaves_the_queue(app: TestClient) -> None:
    cid = citizen_with_personal_data(app)

    conversation = app.get(f"/api/conversations/{cid}")
    status = app.get(f"/api/conversations/{cid}/handoff")
    left = app.delete(f"/api/conversations/{cid}/handoff")

    assert conversation.status_code == 200
    assert conversation.json()["messages"][0]["text"] == PERSONAL
    assert status.json()["state"] == "waiting"
    assert left.json()["state"] == "bot"


@pytest.mark.parametrize(("method", "suffix", "body"), ROUTES)
def test_a_whatsapp_conversation_is_never_reachable_through_the_web_api(
    app: TestClient, services: Services, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    web_conversation(app, services)  # the browser holds a valid chat key of its own
    whatsapp = services.store.create_conversation("whatsapp", citizen_ref="whatsapp:5511987654321").id
    services.store.add_message(whatsapp, "user", PERSONAL)

    assert_not_found(send(app, method, f"/api/conversations/{whatsapp}{suffix}", body))


def test_the_chat_key_is_an_httponly_secure_partitioned_cookie_that_reaches_the_widgets_iframe(
    app: TestClient,
) -> None:
    created = app.post("/api/conversations")

    (cookie,) = created.headers.get_list("set-cookie")
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    name, value = name_value.split("=", 1)
    assert name == "__Host-atende_chat"
    assert len(value) == 43  # 256 random bits, base64url
    assert sorted(attributes) == ["HttpOnly", "Partitioned", "Path=/", "SameSite=None", "Secure"]
    assert created.json() == {"id": created.json()["id"]}  # the key never travels in a body


def test_over_plain_http_in_development_the_chat_key_is_a_lax_cookie_without_the_host_prefix(
    services: Services,
) -> None:
    rewire(services, clock=ManualClock(), settings=with_settings(services.settings, session_cookie_secure=False))
    with TestClient(create_app(services=services)) as client:
        created = client.post("/api/conversations")
        cid = created.json()["id"]
        read = client.get(f"/api/conversations/{cid}")

    (cookie,) = created.headers.get_list("set-cookie")
    assert cookie.startswith("atende_chat=")
    assert sorted(part.strip() for part in cookie.split(";")[1:]) == ["HttpOnly", "Path=/", "SameSite=Lax"]
    assert read.status_code == 200


def test_a_new_conversation_in_the_same_browser_reuses_its_key_and_both_stay_reachable(app: TestClient) -> None:
    first = app.post("/api/conversations").json()["id"]
    key = chat_key_of(app)
    second = app.post("/api/conversations").json()["id"]

    assert key is not None
    assert chat_key_of(app) == key
    assert app.get(f"/api/conversations/{first}").status_code == 200
    assert app.get(f"/api/conversations/{second}").status_code == 200


def test_the_database_keeps_only_the_keys_sha256_digest(app: TestClient, services: Services) -> None:
    cid = app.post("/api/conversations").json()["id"]
    key = chat_key_of(app)
    assert key is not None

    with services.store._sessions() as session:
        stored = session.scalars(select(Conversation.web_key_hash).where(Conversation.id == cid)).one()

    assert stored == hashlib.sha256(key.encode()).hexdigest()


def test_a_cookie_value_the_server_did_not_issue_is_replaced_by_a_fresh_key(
    app: TestClient, services: Services
) -> None:
    set_cookie(app, services.accounts.cookies.chat_key, "chosen-by-someone-else")

    created = app.post("/api/conversations")

    assert "chosen-by-someone-else" not in created.headers["set-cookie"]
    assert app.get(f"/api/conversations/{created.json()['id']}").status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_another_site_makes_the_browser_send_does_not_count_as_the_citizen(
    app: TestClient, services: Services, site: str
) -> None:
    """A form on another site posting to the handoff route would carry a SameSite=None cookie; it reaches nothing."""
    cid = app.post("/api/conversations").json()["id"]

    forged = app.post(f"/api/conversations/{cid}/handoff", headers={"Sec-Fetch-Site": site})
    own = app.get(f"/api/conversations/{cid}/handoff", headers={"Sec-Fetch-Site": "same-origin"})

    assert_not_found(forged)
    assert own.json()["state"] == "bot"


def test_every_route_under_a_conversation_id_requires_the_chat_key(app: TestClient) -> None:
    """A route added later under /api/conversations/{conversation_id} cannot forget the check."""

    def calls(dependant: Any) -> set[Any]:
        found = {dependant.call}
        for sub in dependant.dependencies:
            found |= calls(sub)
        return found

    routes = [r for r in iter_routes(app.app) if r.path.startswith("/api/conversations/{conversation_id}")]  # type: ignore[arg-type]
    unchecked = [
        (r.method, r.path)
        for r in routes
        if not isinstance(r.route, APIRoute) or citizen_conversation not in calls(r.route.dependant)
    ]

    assert {(r.method, r.path) for r in routes} >= {
        (method, "/api/conversations/{conversation_id}" + suffix) for method, suffix, _ in ROUTES
    }
    assert unchecked == []


@pytest.mark.parametrize("suffix", ["/messages", "/messages/stream", "/survey"])
def test_a_body_a_form_on_another_site_could_send_is_not_read_as_json(
    app: TestClient, services: Services, suffix: str
) -> None:
    """A form can post text/plain that looks like JSON but never application/json: those routes refuse it."""
    cid = app.post("/api/conversations").json()["id"]

    forged = app.post(
        f"/api/conversations/{cid}{suffix}",
        content=b'{"text": "quero falar com um atendente", "score": 1}',
        headers={"content-type": "text/plain"},
    )

    assert forged.status_code == 422
    assert services.store.list_messages(cid) == []

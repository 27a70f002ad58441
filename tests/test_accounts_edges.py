"""The edges of staff access: where sign-in may send the browser, which client address counts, the IP lists on
/mcp, and how much an anonymous stranger can write into the audit trail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from assistant.testing import ScriptedChatModel
from atende.accounts.pages import safe_next
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, RecordingAudit, create_user, login, rewire, with_settings
from core.settings import Settings

BASE = "https://testserver"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def make_services(settings: Settings) -> Services:
    svc = build_services(settings, model=ScriptedChatModel([]))
    svc.warm_up(model=False)
    svc.audit = RecordingAudit(svc.audit)
    return svc


@pytest.fixture
def services(test_settings: Settings) -> Iterator[Services]:
    svc = make_services(with_settings(test_settings, totp_required_roles=""))
    yield svc
    svc.close()


@pytest.fixture
def accounts(services: Services) -> Accounts:
    return rewire(services, clock=ManualClock())


@pytest.fixture
def client(services: Services, accounts: Accounts) -> Iterator[TestClient]:
    with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as test_client:
        yield test_client


def audit_of(services: Services) -> RecordingAudit:
    assert isinstance(services.audit, RecordingAudit)
    return services.audit


# --- where sign-in may send the browser --------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",  # what /staff/login?next=/%09/evil.example decodes to; browsers drop the tab
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%5Cevil.example",
        "/%2F/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "/ /evil.example",
        "/\u200b/evil.example",
        "",
    ],
)
def test_only_a_plain_path_on_this_site_is_followed_after_sign_in(target: str) -> None:
    assert safe_next(target) == "/staff/account"


@pytest.mark.parametrize("target", ["/console", "/console/supervisor?fila=saude", "/staff/account#totp"])
def test_a_path_on_this_site_is_followed_after_sign_in(target: str) -> None:
    assert safe_next(target) == target


def test_the_login_page_does_not_carry_a_tab_smuggled_redirect(client: TestClient) -> None:
    page = client.get("/staff/login?next=/%09/evil.example")
    kept = client.get("/staff/login?next=/console")

    assert 'data-next="/staff/account"' in page.text
    assert "evil.example" not in page.text
    assert 'data-next="/console"' in kept.text


# --- the client's address ---------------------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    from core.accounts.ipfilter import ClientAddress, parse_networks

    nobody = ClientAddress()
    proxied = ClientAddress(parse_networks("10.0.0.0/8"))

    assert nobody.resolve("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert proxied.resolve("203.0.113.9", "198.51.100.1") == "203.0.113.9"  # the peer is not our proxy
    assert proxied.resolve("10.0.0.2", "198.51.100.1") == "198.51.100.1"
    # The client wrote the left-most entry itself; the right-most one not ours is what our proxy saw.
    assert proxied.resolve("10.0.0.2", "127.0.0.1, 198.51.100.1, 10.0.0.3") == "198.51.100.1"
    assert proxied.resolve("10.0.0.2", "nonsense") == "10.0.0.2"


def test_a_forged_x_forwarded_for_does_not_get_past_the_staff_allow_list(test_settings: Settings) -> None:
    settings = with_settings(test_settings, totp_required_roles="", staff_ip_allowlist="192.0.2.0/24")
    services = make_services(settings)
    try:
        rewire(services, clock=ManualClock())
        app = create_app(services=services, warm_model=False)
        with TestClient(app, base_url=BASE, client=("203.0.113.9", 5000)) as stranger:
            forged = stranger.get("/api/auth/csrf", headers={"X-Forwarded-For": "192.0.2.10"})
    finally:
        services.close()

    assert (forged.status_code, forged.json()["code"]) == (403, "ip_blocked")


def test_a_trusted_proxy_passes_on_the_clients_address(test_settings: Settings) -> None:
    settings = with_settings(
        test_settings, totp_required_roles="", staff_ip_allowlist="192.0.2.0/24", trusted_proxies="10.0.0.0/8"
    )
    services = make_services(settings)
    try:
        accounts = rewire(services, clock=ManualClock())
        create_user(accounts, "atras-do-proxy", "agent")
        app = create_app(services=services, warm_model=False)
        with TestClient(app, base_url=BASE, client=("10.0.0.2", 5000)) as proxy:
            allowed = proxy.get("/api/auth/csrf", headers={"X-Forwarded-For": "192.0.2.10"})
            refused = proxy.get("/api/auth/csrf", headers={"X-Forwarded-For": "203.0.113.9"})
            proxy.headers["X-Forwarded-For"] = "192.0.2.10"
            signed = login(proxy, "atras-do-proxy")
    finally:
        services.close()

    assert allowed.status_code == 200
    assert (refused.status_code, refused.json()["code"]) == (403, "ip_blocked")
    assert signed.status_code == 200
    [event] = audit_of(services).of("user.login")
    assert event.ip == "192.0.2.10"


# --- /mcp and the staff IP lists ---------------------------------------------------------------------------


def test_the_staff_ip_lists_apply_to_mcp(test_settings: Settings) -> None:
    settings = with_settings(test_settings, totp_required_roles="", staff_ip_blocklist="203.0.113.0/24")
    services = make_services(settings)
    try:
        rewire(services, clock=ManualClock())
        app = create_app(services=services, warm_model=False)
        with TestClient(app, base_url=BASE, client=("203.0.113.9", 5000)) as blocked:
            refused = blocked.post("/mcp", json=PING, headers=MCP_HEADERS)
        with TestClient(app, base_url=BASE, client=("198.51.100.7", 5000)) as elsewhere:
            passed = elsewhere.post("/mcp", json=PING, headers=MCP_HEADERS)
    finally:
        services.close()

    assert (refused.status_code, refused.json()["code"]) == (403, "ip_blocked")
    assert passed.status_code == 401  # through to the MCP layer, which wants its bearer token
    [event] = audit_of(services).of("access.ip_blocked")
    assert (event.object_id, event.ip) == ("* /mcp", "203.0.113.9")


# --- anonymous audit rows ----------------------------------------------------------------------------------


def test_a_hundred_anonymous_requests_to_a_staff_route_write_one_audit_row(
    client: TestClient, services: Services
) -> None:
    client.cookies.clear()
    answers = {client.post("/api/users", json={}).status_code for _ in range(100)}

    rows = [e for e in audit_of(services).events if e.object_id == "POST /api/users"]
    assert answers == {401}
    assert len(rows) == 1
    assert rows[0].actor == "anonymous"
    assert rows[0].details["sampled_window_s"] == 300


def test_the_next_window_writes_a_new_anonymous_row(services: Services) -> None:
    clock = ManualClock()
    accounts = rewire(services, clock=clock)
    with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as client:
        for _ in range(10):
            client.post("/api/teams", json={"name": "x"})
        clock.advance(seconds=301)
        client.post("/api/teams", json={"name": "x"})

    assert accounts.anonymous_audit.window_s == 300
    assert len([e for e in audit_of(services).events if e.object_id == "POST /api/teams"]) == 2


def test_a_hundred_requests_from_a_blocked_address_write_one_audit_row(test_settings: Settings) -> None:
    settings = with_settings(test_settings, totp_required_roles="", staff_ip_blocklist="203.0.113.0/24")
    services = make_services(settings)
    try:
        rewire(services, clock=ManualClock())
        app = create_app(services=services, warm_model=False)
        with TestClient(app, base_url=BASE, client=("203.0.113.9", 5000)) as blocked:
            answers = {blocked.get("/api/users").status_code for _ in range(100)}
    finally:
        services.close()

    assert answers == {403}
    assert len(audit_of(services).of("access.ip_blocked")) == 1


def test_signed_in_staff_are_audited_on_every_request(client: TestClient, accounts: Accounts) -> None:
    from core.accounts.testing import sign_in_directly

    csrf = sign_in_directly(client, accounts, create_user(accounts, "agente-x", "agent"))
    for _ in range(3):
        client.post("/api/users", json={}, headers={"X-CSRF-Token": csrf})

    services: Services = client.app.state.services  # type: ignore[attr-defined]
    rows = [e for e in audit_of(services).events if (e.action, e.object_id) == ("http.post", "POST /api/users")]
    assert len(rows) == 3

"""Signing in as a browser does: cookies and their flags, CSRF, session fixation, expiry, lock-out, per-IP
throttling, IP lists and the audit trail. Time only moves when a test moves the manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backing_services import RedisKeys
from conftest import production_values
from fastapi import APIRouter, WebSocket
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts import permissions
from core.accounts.directory import UserChanges
from core.accounts.service import Accounts
from core.accounts.testing import (
    PASSWORD,
    ManualClock,
    RecordingAudit,
    create_user,
    login,
    rewire,
    set_cookie,
    sign_in_directly,
    with_settings,
)
from core.accounts.types import SYSTEM, AccountError, Origin
from core.settings import Settings

BASE = "https://testserver"
SESSION = "__Host-atende_session"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def account_settings(test_settings: Settings) -> Settings:
    return with_settings(test_settings, totp_required_roles="", login_ip_max_attempts=50)


@pytest.fixture
def services(account_settings: Settings) -> Iterator[Services]:
    svc = build_services(account_settings, model=ScriptedChatModel([]))
    svc.warm_up(model=False)
    svc.audit = RecordingAudit(svc.audit)
    yield svc
    svc.close()


@pytest.fixture
def audit(services: Services) -> RecordingAudit:
    assert isinstance(services.audit, RecordingAudit)
    return services.audit


@pytest.fixture
def accounts(services: Services, clock: ManualClock) -> Accounts:
    return rewire(services, clock=clock)


@pytest.fixture
def client(services: Services, accounts: Accounts) -> Iterator[TestClient]:
    with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as test_client:
        yield test_client


def set_cookies(response: object) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {header.split("=", 1)[0]: header for header in headers}


# --- cookies and CSRF ------------------------------------------------------------------------------------


def test_signing_in_sets_an_httponly_secure_samesite_session_cookie(client: TestClient, accounts: Accounts) -> None:
    create_user(accounts, "ana", "agent")

    response = login(client, "ana")

    assert response.status_code == 200
    cookies = set_cookies(response)
    session = cookies[SESSION].lower()
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= {part.strip() for part in session.split(";")}
    assert "domain=" not in session
    # The CSRF cookie is for the page's script: readable, strict, secure.
    csrf = cookies["__Host-atende_csrf"].lower()
    assert "httponly" not in csrf
    assert "samesite=strict" in csrf
    assert response.json()["csrf_token"] in cookies["__Host-atende_csrf"]


def test_cookies_drop_secure_only_where_configured_and_production_refuses_that(
    services: Services, clock: ManualClock, account_settings: Settings
) -> None:
    rewire(services, clock=clock, settings=with_settings(account_settings, session_cookie_secure=False))
    create_user(services.accounts, "bia", "agent")

    with TestClient(create_app(services=services, warm_model=False)) as plain_http:
        cookies = set_cookies(login(plain_http, "bia"))

    assert "secure" not in cookies["atende_session"].lower()
    with pytest.raises(ValidationError, match="ATENDE_SESSION_COOKIE_SECURE"):
        Settings(**production_values(), session_cookie_secure=False, _env_file=None)  # type: ignore[arg-type]


def test_signing_in_without_the_forms_csrf_token_is_refused(client: TestClient, accounts: Accounts) -> None:
    create_user(accounts, "caio", "agent")
    body = {"username": "caio", "password": PASSWORD}

    missing = client.post("/api/auth/login", json=body)
    # A value of the attacker's own making, put both in a cookie and in the header: the signature gives it away.
    set_cookie(client, "__Host-atende_csrf", "forjado.0123456789abcdef0123456789abcdef")
    forged = client.post(
        "/api/auth/login", json=body, headers={"X-CSRF-Token": "forjado.0123456789abcdef0123456789abcdef"}
    )

    assert (missing.status_code, missing.json()["code"]) == (403, "csrf_invalid")
    assert (forged.status_code, forged.json()["code"]) == (403, "csrf_invalid")
    assert SESSION not in set_cookies(forged)


def test_a_session_id_planted_before_sign_in_never_becomes_the_signed_in_session(
    client: TestClient, accounts: Accounts
) -> None:
    create_user(accounts, "davi", "agent")
    victim = create_user(accounts, "eva", "agent")
    # The attacker's own valid session, planted in the victim's browser…
    planted = accounts.sessions.create(victim.id, auth_method="password", mfa_verified=True).cookie
    set_cookie(client, SESSION, planted)

    response = login(client, "davi")

    issued = client.cookies.get(SESSION)
    assert response.status_code == 200
    assert issued
    assert issued != planted
    assert accounts.sessions.get(planted) is None  # …is gone, not upgraded
    assert client.get("/api/auth/me").json()["user"]["username"] == "davi"


def test_signing_out_ends_the_session_on_the_server(client: TestClient, accounts: Accounts) -> None:
    create_user(accounts, "fabi", "agent")
    csrf = login(client, "fabi").json()["csrf_token"]
    cookie = client.cookies.get(SESSION)

    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    set_cookie(client, SESSION, cookie or "")
    replay = client.get("/api/auth/me")

    assert (replay.status_code, replay.json()["code"]) == (401, "authentication_required")


def test_signing_out_needs_the_sessions_csrf_token(client: TestClient, accounts: Accounts) -> None:
    create_user(accounts, "gil", "agent")
    login(client, "gil")

    forged = client.post("/api/auth/logout")

    assert (forged.status_code, forged.json()["code"]) == (403, "csrf_invalid")
    assert client.get("/api/auth/me").status_code == 200


# --- passwords, lock-out, throttling -----------------------------------------------------------------------


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(client: TestClient, accounts: Accounts) -> None:
    create_user(accounts, "hugo", "agent")

    unknown = login(client, "ninguem", "qualquer-coisa-longa")
    wrong = login(client, "hugo", "senha-errada-longa")

    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert wrong.json()["code"] == "invalid_credentials"


def test_repeated_wrong_passwords_lock_the_account_until_the_lock_expires(
    client: TestClient, accounts: Accounts, clock: ManualClock, audit: RecordingAudit
) -> None:
    user = create_user(accounts, "iris", "agent")
    for _ in range(5):
        login(client, "iris", "senha-errada-longa")

    during = login(client, "iris")
    clock.advance(minutes=14, seconds=59)
    still = login(client, "iris")
    clock.advance(seconds=2)
    after = login(client, "iris")

    # While locked, the right password gets the very answer a wrong one gets.
    assert during.status_code == still.status_code == 401
    assert during.json()["code"] == "invalid_credentials"
    assert after.status_code == 200
    locked = audit.of("user.locked")
    assert [e.object_id for e in locked] == [str(user.id)]
    assert [e.details["reason"] for e in audit.of("user.login_failed")][-2:] == ["locked", "locked"]


def test_an_administrator_can_lift_a_lock_at_once(
    client: TestClient, accounts: Accounts, audit: RecordingAudit
) -> None:
    user = create_user(accounts, "joao", "agent")
    for _ in range(5):
        login(client, "joao", "senha-errada-longa")
    admin = create_user(accounts, "chefe", "admin")
    admin_client = TestClient(client.app, base_url=BASE)
    csrf = sign_in_directly(admin_client, accounts, admin)

    unlocked = admin_client.post(f"/api/users/{user.id}/unlock", headers={"X-CSRF-Token": csrf})

    assert unlocked.json()["user"]["locked"] is False
    assert login(client, "joao").status_code == 200
    assert audit.of("user.unlocked")[0].actor == f"user:{admin.id}"


def test_a_successful_sign_in_resets_the_failure_count(client: TestClient, accounts: Accounts) -> None:
    create_user(accounts, "kati", "agent")
    for _ in range(4):
        login(client, "kati", "senha-errada-longa")
    assert login(client, "kati").status_code == 200
    for _ in range(4):
        login(client, "kati", "senha-errada-longa")

    assert login(client, "kati").status_code == 200


def test_too_many_attempts_from_one_address_wait_out_the_window_while_other_addresses_go_on(
    services: Services, clock: ManualClock, account_settings: Settings
) -> None:
    accounts = rewire(
        services,
        clock=clock,
        settings=with_settings(account_settings, login_ip_max_attempts=3, login_ip_window_seconds=60),
    )
    create_user(accounts, "lia", "agent")
    app = create_app(services=services, warm_model=False)
    with (
        TestClient(app, base_url=BASE, client=("203.0.113.7", 40000)) as noisy,
        TestClient(app, base_url=BASE, client=("198.51.100.9", 40000)) as quiet,
    ):
        first = [login(noisy, "lia", "senha-errada-longa").status_code for _ in range(3)]
        throttled = login(noisy, "lia")
        elsewhere = login(quiet, "lia")
        clock.advance(seconds=61)
        later = login(noisy, "lia")

    assert first == [401, 401, 401]
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_attempts"
    assert 0 < int(throttled.headers["retry-after"]) <= 60
    assert elsewhere.status_code == 200
    assert later.status_code == 200


@pytest.mark.integration
def test_the_per_address_throttle_is_shared_by_every_app_process_through_redis(
    services: Services, clock: ManualClock, account_settings: Settings, redis_keys: RedisKeys
) -> None:
    from core.ratelimit import RedisRateLimiter

    client, prefix = redis_keys.client, redis_keys.prefix
    settings = with_settings(account_settings, login_ip_max_attempts=2)
    # Two "processes": separate Accounts, one Redis.
    first = rewire(services, clock=clock, settings=settings, limiter=RedisRateLimiter(client, prefix=prefix))
    second = rewire(services, clock=clock, settings=settings, limiter=RedisRateLimiter(client, prefix=prefix))
    origin = Origin(ip="192.0.2.44")
    first.authn.throttle(origin)
    second.authn.throttle(origin)
    with pytest.raises(AccountError) as refused:
        first.authn.throttle(origin)
    second.authn.throttle(Origin(ip="192.0.2.45"))

    assert refused.value.status == 429


# --- session lifetime ----------------------------------------------------------------------------------


def test_an_idle_session_expires(client: TestClient, accounts: Accounts, clock: ManualClock) -> None:
    sign_in_directly(client, accounts, create_user(accounts, "mel", "agent"))
    clock.advance(minutes=29)
    assert client.get("/api/auth/me").status_code == 200

    clock.advance(minutes=30, seconds=1)

    assert client.get("/api/auth/me").status_code == 401


def test_a_busy_session_still_ends_at_its_absolute_lifetime(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    sign_in_directly(client, accounts, create_user(accounts, "nina", "agent"))
    answers = []
    for _ in range(12 * 3):  # a request every 20 minutes for 12 hours
        clock.advance(minutes=20)
        answers.append(client.get("/api/auth/me").status_code)

    assert answers[:-1] == [200] * (len(answers) - 1)
    assert answers[-1] == 401


def test_disabling_an_account_ends_its_sessions_and_silences_its_tokens(client: TestClient, accounts: Accounts) -> None:
    user = create_user(accounts, "otto", "supervisor")
    sign_in_directly(client, accounts, user)
    token = accounts.tokens.issue(name="p", scopes=["users:admin"], created_by="test", user_id=user.id).token
    assert accounts.tokens.verify(token) is not None

    accounts.directory.disable(user.id, actor="system", origin=SYSTEM)

    assert client.get("/api/auth/me").status_code == 401
    assert accounts.tokens.verify(token) is None
    assert login(client, "otto").status_code == 401


def test_a_new_role_takes_effect_through_a_new_session_only(client: TestClient, accounts: Accounts) -> None:
    user = create_user(accounts, "paulo", "agent")
    sign_in_directly(client, accounts, user)

    accounts.directory.update_user(user.id, UserChanges(role="supervisor"), actor="system", origin=SYSTEM)

    assert client.get("/api/auth/me").status_code == 401
    assert login(client, "paulo").json()["user"]["role"] == "supervisor"


# --- IP lists ----------------------------------------------------------------------------------------------


def test_the_staff_blocklist_refuses_staff_routes_but_never_citizens(
    services: Services, clock: ManualClock, account_settings: Settings, audit: RecordingAudit
) -> None:
    accounts = rewire(services, clock=clock, settings=with_settings(account_settings, staff_ip_blocklist="10.9.0.0/16"))
    create_user(accounts, "quel", "agent")
    app = create_app(services=services, warm_model=False)
    with TestClient(app, base_url=BASE, client=("10.9.4.2", 40000)) as blocked:
        page = blocked.get("/staff/login")
        api = blocked.get("/api/users")
        citizen = blocked.post("/api/conversations")
        health = blocked.get("/healthz")

    assert (page.status_code, api.status_code) == (403, 403)
    assert api.json()["code"] == "ip_blocked"
    assert (citizen.status_code, health.status_code) == (201, 200)
    assert audit.of("access.ip_blocked")[0].ip == "10.9.4.2"


def test_the_staff_allowlist_admits_only_its_networks(
    services: Services, clock: ManualClock, account_settings: Settings
) -> None:
    accounts = rewire(
        services,
        clock=clock,
        settings=with_settings(account_settings, staff_ip_allowlist="192.168.10.0/24, 2001:db8::/32"),
    )
    create_user(accounts, "rui", "agent")
    app = create_app(services=services, warm_model=False)
    with (
        TestClient(app, base_url=BASE, client=("192.168.10.77", 40000)) as inside,
        TestClient(app, base_url=BASE, client=("192.168.11.1", 40000)) as outside,
    ):
        assert login(inside, "rui").status_code == 200
        assert outside.get("/api/auth/csrf").status_code == 403


def test_a_malformed_network_in_the_ip_lists_is_refused_at_start_up(test_settings: Settings) -> None:
    with pytest.raises(ValidationError, match=r"10\.0\.0\.0/33"):
        with_settings(test_settings, staff_ip_blocklist="10.0.0.0/8, 10.0.0.0/33")


# --- audit -------------------------------------------------------------------------------------------------


def test_sign_ins_failures_and_sign_outs_are_audited_with_the_address_and_never_the_password(
    client: TestClient, accounts: Accounts, audit: RecordingAudit
) -> None:
    user = create_user(accounts, "sara", "agent")
    login(client, "sara", "senha-errada-longa")
    csrf = login(client, "sara").json()["csrf_token"]
    client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})

    mine = [e for e in audit.events if e.object_id == str(user.id)]
    assert [e.action for e in mine if e.action.startswith("user.log")] == [
        "user.login_failed",
        "user.login",
        "user.logout",
    ]
    assert mine[-1].actor == f"user:{user.id}"
    assert all(e.ip == "testclient" for e in mine if e.action.startswith("user.log"))
    assert not any(PASSWORD in repr(e) or "senha-errada-longa" in repr(e) for e in audit.events)


def test_a_cookie_authenticated_websocket_needs_a_same_origin_handshake(
    services: Services, accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(services=services, warm_model=False)
    live = APIRouter()

    @live.websocket("/api/live")
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"ok": True})
        await websocket.close()

    app.include_router(live)
    monkeypatch.setitem(permissions.ROUTES, ("WEBSOCKET", "/api/live"), "conversation.read")
    with TestClient(app, base_url=BASE) as client:
        sign_in_directly(client, accounts, create_user(accounts, "tina", "agent"))
        with (
            pytest.raises(WebSocketDisconnect) as cross_site,
            client.websocket_connect("/api/live", headers={"origin": "https://evil.example"}) as ws,
        ):
            ws.receive_json()
        with client.websocket_connect("/api/live", headers={"origin": BASE}) as ws:
            same_site = ws.receive_json()

    assert cross_site.value.code == 1008
    assert same_site == {"ok": True}


def test_single_sign_on_providers_come_from_json_with_their_secret_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATENDE_ENVIRONMENT", "test")
    monkeypatch.setenv("ATENDE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(
        "ATENDE_OIDC_PROVIDERS",
        '{"govbr": {"issuer": "https://sso.staging.acesso.gov.br", "client_id": "atende", "client_secret": "s3gr3d0"}}',
    )
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv(
        "ATENDE_OIDC_PROVIDERS", '{"govbr": {"issuer": "x", "client_id": "y", "provision_role": "chefe"}}'
    )

    assert settings.oidc_providers["govbr"].client_secret.get_secret_value() == "s3gr3d0"
    assert "s3gr3d0" not in repr(settings)
    with pytest.raises(ValidationError, match="unknown role 'chefe'"):
        Settings(_env_file=None)  # type: ignore[call-arg]

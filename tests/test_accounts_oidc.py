"""Single sign-on end to end against a real OpenID Connect provider on loopback (tests/oidc_provider.py):
authorization code with PKCE, state and nonce, an RS256 ID token checked against the provider's JWKS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from oidc_provider import OIDCProvider, Tamper, running_provider

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.directory import UserChanges
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, RecordingAudit, create_user, rewire, with_settings
from core.accounts.totp import code_at
from core.accounts.types import SYSTEM
from core.settings import Settings

pytestmark = pytest.mark.integration  # a real HTTP server on loopback

BASE = "https://testserver"


@pytest.fixture
def provider() -> Iterator[OIDCProvider]:
    with running_provider() as running:
        yield running


def sso_settings(test_settings: Settings, provider: OIDCProvider, **govbr: Any) -> Settings:
    config = {"issuer": provider.issuer, "client_id": provider.client_id, "client_secret": provider.client_secret}
    return with_settings(test_settings, totp_required_roles="", oidc_providers={"govbr": {**config, **govbr}})


@pytest.fixture
def services(test_settings: Settings, provider: OIDCProvider) -> Iterator[Services]:
    svc = build_services(sso_settings(test_settings, provider), model=ScriptedChatModel([]))
    svc.warm_up(model=False)
    svc.audit = RecordingAudit(svc.audit)
    yield svc
    svc.close()


@pytest.fixture
def accounts(services: Services) -> Accounts:
    return rewire(services, clock=ManualClock())


@pytest.fixture
def client(services: Services, accounts: Accounts) -> Iterator[TestClient]:
    with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as test_client:
        yield test_client


def sign_in_with_provider(client: TestClient, *, keep_flow_cookie: bool = True) -> httpx.Response:
    """The browser's trip: our login link → the provider (real HTTP) → back to our callback."""
    start = client.get("/api/auth/oidc/govbr/login", params={"next": "/staff/account"}, follow_redirects=False)
    assert start.status_code == 302, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302
    back = urlparse(at_provider.headers["location"])
    if not keep_flow_cookie:
        client.cookies.clear()
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)  # type: ignore[return-value]


def test_a_member_signs_in_through_the_provider_with_pkce_state_and_nonce(
    client: TestClient, accounts: Accounts, provider: OIDCProvider, services: Services
) -> None:
    user = create_user(accounts, "servidora", "agent")
    accounts.directory.update_user(
        user.id, UserChanges(email="servidora@santa-aurora.gov.br"), actor="system", origin=SYSTEM
    )
    provider.user = {"sub": "12345678909", "email": "servidora@santa-aurora.gov.br", "email_verified": True}

    done = sign_in_with_provider(client)
    me = client.get("/api/auth/me").json()

    asked = provider.seen[-1]
    assert asked["code_challenge_method"] == "S256"
    assert asked["state"]
    assert asked["nonce"]
    assert asked["redirect_uri"] == f"{BASE}/api/auth/oidc/govbr/callback"
    assert done.status_code == 303
    assert done.headers["location"] == "/staff/account"
    assert me["user"]["username"] == "servidora"
    assert me["session"]["auth_method"] == "oidc:govbr"
    assert accounts.directory.require(user.id).oidc_subject == "govbr:12345678909"
    assert isinstance(services.audit, RecordingAudit)
    assert services.audit.of("user.login")[-1].details == {"method": "oidc:govbr", "mfa": False}


def test_once_linked_the_provider_subject_finds_the_account_even_with_a_new_email(
    client: TestClient, accounts: Accounts, provider: OIDCProvider
) -> None:
    accounts.directory.create_user(
        "vinculado", "agent", password="senha-de-teste-longa", oidc_subject="govbr:999", actor="system", origin=SYSTEM
    )
    provider.user = {"sub": "999", "email": "outro@exemplo.com", "email_verified": True}

    sign_in_with_provider(client)

    assert client.get("/api/auth/me").json()["user"]["username"] == "vinculado"


def test_an_identity_without_an_account_is_turned_away(
    client: TestClient, accounts: Accounts, provider: OIDCProvider
) -> None:
    provider.user = {"sub": "1", "email": "desconhecido@exemplo.com", "email_verified": True}

    done = sign_in_with_provider(client)

    assert done.headers["location"] == "/staff/login?erro=sso_no_account"
    assert client.get("/api/auth/me").status_code == 401


def test_an_unverified_email_matches_no_account(client: TestClient, accounts: Accounts, provider: OIDCProvider) -> None:
    accounts.directory.create_user(
        "alvo",
        "admin",
        password="senha-de-teste-longa",
        email="alvo@santa-aurora.gov.br",
        actor="system",
        origin=SYSTEM,
    )
    provider.user = {"sub": "atacante", "email": "alvo@santa-aurora.gov.br", "email_verified": False}

    done = sign_in_with_provider(client)

    assert done.headers["location"] == "/staff/login?erro=sso_no_account"


@pytest.mark.parametrize("tamper", ["nonce", "audience", "signature", "issuer", "expired"])
def test_a_forged_or_stale_id_token_opens_no_session(
    tamper: Tamper, client: TestClient, accounts: Accounts, provider: OIDCProvider
) -> None:
    accounts.directory.create_user(
        "vitima", "agent", password="senha-de-teste-longa", oidc_subject="govbr:42", actor="system", origin=SYSTEM
    )
    provider.user = {"sub": "42"}
    provider.tamper = tamper

    done = sign_in_with_provider(client)

    assert done.headers["location"] == "/staff/login?erro=sso_failed"
    assert client.get("/api/auth/me").status_code == 401


def test_a_callback_from_a_flow_this_browser_did_not_start_is_refused(
    client: TestClient, accounts: Accounts, provider: OIDCProvider
) -> None:
    """Login CSRF: an attacker's own code and state, delivered to the victim's browser."""
    accounts.directory.create_user(
        "atacante", "agent", password="senha-de-teste-longa", oidc_subject="govbr:7", actor="system", origin=SYSTEM
    )
    provider.user = {"sub": "7"}

    done = sign_in_with_provider(client, keep_flow_cookie=False)

    assert done.headers["location"] == "/staff/login?erro=sso_failed"
    assert client.get("/api/auth/me").status_code == 401


def test_a_provider_allowed_to_provision_creates_the_account_with_the_configured_role(
    test_settings: Settings, provider: OIDCProvider
) -> None:
    settings = sso_settings(test_settings, provider, provision_role="agent", mfa_trusted=True)
    services = build_services(settings, model=ScriptedChatModel([]))
    services.warm_up(model=False)
    rewire(services, clock=ManualClock())
    provider.user = {"sub": "55", "email": "nova.servidora@santa-aurora.gov.br", "email_verified": True}
    try:
        with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as client:
            sign_in_with_provider(client)
            me = client.get("/api/auth/me").json()
    finally:
        services.close()

    assert me["user"]["username"] == "nova.servidora"
    assert me["user"]["role"] == "agent"
    assert me["user"]["sso_linked"] is True
    assert me["restrictions"] == []


def test_after_an_untrusted_provider_the_local_second_factor_is_still_asked(
    client: TestClient, accounts: Accounts, provider: OIDCProvider
) -> None:
    accounts.directory.create_user(
        "cautelosa", "agent", password="senha-de-teste-longa", oidc_subject="govbr:88", actor="system", origin=SYSTEM
    )
    user = accounts.directory.require("cautelosa")
    secret, _ = accounts.authn.begin_totp(user.id, origin=SYSTEM)
    session = accounts.sessions.create(user.id, auth_method="password", mfa_verified=False)
    accounts.authn.confirm_totp(user.id, code_at(secret, accounts.clock()), origin=SYSTEM, session=session.info)
    provider.user = {"sub": "88"}

    sign_in_with_provider(client)
    me = client.get("/api/auth/me").json()

    assert me["restrictions"] == ["totp_required"]
    assert client.get("/api/users").status_code == 403


def test_the_login_page_offers_each_configured_provider(client: TestClient) -> None:
    page = client.get("/staff/login")
    listed = client.get("/api/auth/oidc/providers").json()["providers"]

    assert "Entrar com gov.br" in page.text
    assert [(p["name"], p["label"]) for p in listed] == [("govbr", "gov.br")]
    assert parse_qs(urlparse(listed[0]["login_url"]).query) == {}

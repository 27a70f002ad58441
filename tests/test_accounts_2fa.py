"""Two-factor sign-in with TOTP: enrolment, codes at sign-in, replay and drift, recovery codes, lock-out on
wrong codes, roles that require it, and administrator resets. The authenticator app is pyotp on the test clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.models import User
from core.accounts.service import Accounts
from core.accounts.testing import (
    PASSWORD,
    ManualClock,
    RecordingAudit,
    create_user,
    login,
    rewire,
    sign_in_directly,
    with_settings,
)
from core.accounts.totp import code_at
from core.db import make_session_factory
from core.settings import Settings

BASE = "https://testserver"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def services(test_settings: Settings) -> Iterator[Services]:
    settings = with_settings(test_settings, totp_required_roles="supervisor", login_ip_max_attempts=100)
    svc = build_services(settings, model=ScriptedChatModel([]))
    svc.warm_up(model=False)
    svc.audit = RecordingAudit(svc.audit)
    yield svc
    svc.close()


@pytest.fixture
def accounts(services: Services, clock: ManualClock) -> Accounts:
    return rewire(services, clock=clock)


@pytest.fixture
def client(services: Services, accounts: Accounts) -> Iterator[TestClient]:
    with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as test_client:
        yield test_client


def post(client: TestClient, path: str, csrf: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, json=body, headers={"X-CSRF-Token": csrf})


def enrol(client: TestClient, csrf: str, clock: ManualClock) -> tuple[str, list[str]]:
    """Turn two-factor on as the account page does; returns the secret and the recovery codes."""
    secret = post(client, "/api/auth/2fa/enroll", csrf).json()["secret"]
    confirmed = post(client, "/api/auth/2fa/confirm", csrf, {"code": code_at(secret, clock())})
    assert confirmed.status_code == 200, confirmed.json()
    return secret, confirmed.json()["recovery_codes"]


def member_with_two_factor(client: TestClient, accounts: Accounts, clock: ManualClock, username: str) -> str:
    user = create_user(accounts, username, "agent")
    secret, _ = enrol(client, sign_in_directly(client, accounts, user), clock)
    client.cookies.clear()
    clock.advance(seconds=30)  # the enrolment code is spent
    return secret


def test_enrolling_gives_an_authenticator_address_and_the_apps_first_code_turns_two_factor_on(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "ana", "agent"))
    before = client.cookies.get("__Host-atende_session")

    started = post(client, "/api/auth/2fa/enroll", csrf).json()
    confirmed = post(client, "/api/auth/2fa/confirm", csrf, {"code": code_at(started["secret"], clock())})

    assert started["provisioning_uri"].startswith("otpauth://totp/")
    assert "issuer=Prefeitura%20de%20Santa%20Aurora" in started["provisioning_uri"]
    assert confirmed.json()["user"]["totp_enabled"] is True
    assert len(set(confirmed.json()["recovery_codes"])) == 10
    # Turning on a second factor is a privilege change: a new session id.
    assert client.cookies.get("__Host-atende_session") != before


def test_a_wrong_first_code_leaves_two_factor_off(client: TestClient, accounts: Accounts, clock: ManualClock) -> None:
    user = create_user(accounts, "bia", "agent")
    csrf = sign_in_directly(client, accounts, user)
    secret = post(client, "/api/auth/2fa/enroll", csrf).json()["secret"]
    wrong = f"{(int(code_at(secret, clock())) + 1) % 1_000_000:06d}"

    refused = post(client, "/api/auth/2fa/confirm", csrf, {"code": wrong})

    assert (refused.status_code, refused.json()["code"]) == (422, "totp_invalid")
    assert accounts.directory.require(user.id).totp_enabled is False


def test_with_two_factor_on_signing_in_needs_the_current_code(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    secret = member_with_two_factor(client, accounts, clock, "caio")

    without = login(client, "caio")
    wrong = login(client, "caio", totp_code="000000" if code_at(secret, clock()) != "000000" else "111111")
    right = login(client, "caio", totp_code=code_at(secret, clock()))

    assert (without.status_code, without.json()["code"]) == (401, "invalid_credentials")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials")
    assert right.status_code == 200
    assert right.json()["restrictions"] == []


def test_a_right_password_without_its_code_answers_exactly_like_a_wrong_password(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    secret = member_with_two_factor(client, accounts, clock, "cora")
    wrong_code = "000000" if code_at(secret, clock()) != "000000" else "111111"

    right_no_code = login(client, "cora")
    wrong_no_code = login(client, "cora", password="outra-senha-qualquer")
    right_wrong_code = login(client, "cora", totp_code=wrong_code)
    wrong_wrong_code = login(client, "cora", password="outra-senha-qualquer", totp_code=wrong_code)

    answers = {(r.status_code, r.text) for r in (right_no_code, wrong_no_code, right_wrong_code, wrong_wrong_code)}
    assert len(answers) == 1
    assert right_no_code.status_code == 401
    assert right_no_code.json()["code"] == "invalid_credentials"


def test_a_code_is_accepted_once(client: TestClient, accounts: Accounts, clock: ManualClock) -> None:
    secret = member_with_two_factor(client, accounts, clock, "davi")
    code = code_at(secret, clock())

    first = login(client, "davi", totp_code=code)
    client.cookies.clear()
    replay = login(client, "davi", totp_code=code)
    clock.advance(seconds=30)
    next_code = login(client, "davi", totp_code=code_at(secret, clock()))

    assert first.status_code == 200
    assert (replay.status_code, replay.json()["code"]) == (401, "invalid_credentials")
    assert next_code.status_code == 200


def test_a_phone_clock_one_step_off_still_works_but_not_two(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    secret = member_with_two_factor(client, accounts, clock, "eva")
    clock.advance(minutes=5)

    two_behind = login(client, "eva", totp_code=code_at(secret, clock() - timedelta(seconds=60)))
    one_behind = login(client, "eva", totp_code=code_at(secret, clock() - timedelta(seconds=30)))

    assert two_behind.status_code == 401
    assert one_behind.status_code == 200


def test_each_recovery_code_signs_in_once(client: TestClient, accounts: Accounts, clock: ManualClock) -> None:
    user = create_user(accounts, "fabi", "agent")
    _, codes = enrol(client, sign_in_directly(client, accounts, user), clock)
    client.cookies.clear()

    first = login(client, "fabi", totp_code=codes[3])
    client.cookies.clear()
    again = login(client, "fabi", totp_code=codes[3])
    other = login(client, "fabi", totp_code=codes[4].upper())

    assert first.status_code == 200
    assert again.status_code == 401
    assert other.status_code == 200
    assert len(client.app.state.services.audit.of("user.recovery_code_used")) == 2  # type: ignore[attr-defined]


def test_wrong_codes_count_towards_the_lock_out(client: TestClient, accounts: Accounts, clock: ManualClock) -> None:
    secret = member_with_two_factor(client, accounts, clock, "gil")
    right = code_at(secret, clock())
    wrong = "000000" if right != "000000" else "111111"

    answers = [login(client, "gil", totp_code=wrong).json()["code"] for _ in range(5)]
    locked_out = login(client, "gil", totp_code=right)

    assert answers == ["invalid_credentials"] * 5
    assert locked_out.json()["code"] == "invalid_credentials"
    assert accounts.directory.require("gil").locked_until is not None


def test_a_role_that_requires_two_factor_confines_new_sessions_to_enrolment(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    create_user(accounts, "hugo", "supervisor")

    signed_in = login(client, "hugo")
    csrf = signed_in.json()["csrf_token"]
    confined = client.get("/api/teams")
    secret, _ = enrol(client, csrf, clock)
    freed = client.get("/api/teams")
    client.cookies.clear()
    clock.advance(seconds=30)
    next_time = login(client, "hugo", totp_code=code_at(secret, clock()))

    assert signed_in.json()["restrictions"] == ["totp_enrollment_required"]
    assert (confined.status_code, confined.json()["code"]) == (403, "totp_enrollment_required")
    assert freed.status_code == 200
    assert next_time.json()["restrictions"] == []


def test_two_factor_stays_on_where_the_role_requires_it_and_goes_off_elsewhere(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    supervisor = create_user(accounts, "iris", "supervisor")
    csrf = sign_in_directly(client, accounts, supervisor, mfa_verified=False)
    secret, _ = enrol(client, csrf, clock)
    csrf = client.get("/api/auth/me").json()["csrf_token"]
    clock.advance(seconds=30)
    kept = post(client, "/api/auth/2fa/disable", csrf, {"password": PASSWORD, "code": code_at(secret, clock())})

    client.cookies.clear()
    agent_secret = member_with_two_factor(client, accounts, clock, "joao")
    agent_csrf = login(client, "joao", totp_code=code_at(agent_secret, clock())).json()["csrf_token"]
    clock.advance(seconds=30)
    dropped = post(
        client, "/api/auth/2fa/disable", agent_csrf, {"password": PASSWORD, "code": code_at(agent_secret, clock())}
    )

    assert (kept.status_code, kept.json()["code"]) == (403, "totp_required_by_role")
    assert dropped.status_code == 204
    assert login(client, "joao").status_code == 200


def test_an_administrator_reset_removes_two_factor_and_ends_the_members_sessions(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    secret = member_with_two_factor(client, accounts, clock, "kati")
    member = TestClient(client.app, base_url=BASE)
    assert login(member, "kati", totp_code=code_at(secret, clock())).status_code == 200
    user = accounts.directory.require("kati")
    admin_csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))

    reset = post(client, f"/api/users/{user.id}/reset-2fa", admin_csrf)

    assert reset.json()["user"]["totp_enabled"] is False
    assert member.get("/api/auth/me").status_code == 401
    assert login(member, "kati").status_code == 200


def test_the_totp_secret_is_stored_encrypted(
    services: Services, client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    secret = member_with_two_factor(client, accounts, clock, "lia")

    with make_session_factory(services.engine)() as db:
        stored = db.scalar(select(User.totp_secret).where(User.username == "lia"))

    assert stored is not None
    assert secret not in stored
    assert services.lgpd is not None
    assert services.lgpd.cipher.decrypt(stored) == secret


def test_a_pending_second_factor_only_opens_the_verification_step(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    """A session opened without the code (single sign-on from a provider not trusted with 2FA)."""
    secret = member_with_two_factor(client, accounts, clock, "mel")
    csrf = sign_in_directly(client, accounts, accounts.directory.require("mel"), mfa_verified=False)

    me = client.get("/api/auth/me").json()
    password_change = post(client, "/api/auth/password", csrf, {"current_password": PASSWORD, "new_password": "x" * 20})
    verified = post(client, "/api/auth/2fa/verify", csrf, {"code": code_at(secret, clock())})

    assert me["restrictions"] == ["totp_required"]
    assert password_change.json()["code"] == "totp_required"
    assert verified.json()["restrictions"] == []


def test_by_default_every_staff_role_with_access_to_citizens_or_tokens_must_use_two_factor(
    test_settings: Settings,
) -> None:
    services = build_services(test_settings, model=ScriptedChatModel([]))
    services.warm_up(model=False)
    try:
        accounts = rewire(services, clock=ManualClock())
        with TestClient(create_app(services=services, warm_model=False), base_url=BASE) as client:
            confined = {}
            for role in ("admin", "supervisor", "agent", "integrator", "content_editor"):
                create_user(accounts, f"padrao-{role.replace('_', '-')}", role)
                client.cookies.clear()
                confined[role] = login(client, f"padrao-{role.replace('_', '-')}").json()["restrictions"]
    finally:
        services.close()

    assert confined == {
        "admin": ["totp_enrollment_required"],
        "supervisor": ["totp_enrollment_required"],
        "agent": ["totp_enrollment_required"],
        "integrator": ["totp_enrollment_required"],
        "content_editor": [],
    }


def test_single_sign_on_from_a_provider_trusted_with_two_factor_stands_in_for_it(
    test_settings: Settings,
) -> None:
    services = build_services(test_settings, model=ScriptedChatModel([]))
    services.warm_up(model=False)
    try:
        accounts = rewire(services, clock=ManualClock())
        agent = create_user(accounts, "sso-agente", "agent")
        trusted = accounts.sessions.create(agent.id, auth_method="oidc:govbr", mfa_verified=True).info
        untrusted = accounts.sessions.create(agent.id, auth_method="oidc:outro", mfa_verified=False).info
        password = accounts.sessions.create(agent.id, auth_method="password", mfa_verified=False).info

        assert accounts.authn.restrictions(agent, trusted) == frozenset()
        assert accounts.authn.restrictions(agent, untrusted) == {"totp_enrollment_required"}
        assert accounts.authn.restrictions(agent, password) == {"totp_enrollment_required"}
    finally:
        services.close()

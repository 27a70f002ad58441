"""The password policy: argon2 hashes, length and simple-password rules, history, expiry, temporary passwords,
and changing one's own password (which ends every other session)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.models import PasswordHistory, User
from core.accounts.passwords import PasswordPolicy, Passwords
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
from core.accounts.types import SYSTEM
from core.db import make_session_factory
from core.settings import Settings

BASE = "https://testserver"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def services(test_settings: Settings) -> Iterator[Services]:
    svc = build_services(
        with_settings(test_settings, totp_required_roles="", password_history=3), model=ScriptedChatModel([])
    )
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


def change(client: TestClient, csrf: str, current: str, new: str) -> object:
    return client.post(
        "/api/auth/password", json={"current_password": current, "new_password": new}, headers={"X-CSRF-Token": csrf}
    )


def test_passwords_are_stored_as_argon2id_hashes(services: Services, accounts: Accounts) -> None:
    user = create_user(accounts, "alice", "agent")

    with make_session_factory(services.engine)() as db:
        stored = db.scalar(select(User.password_hash).where(User.id == user.id))

    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_hash_made_with_weaker_parameters_is_upgraded_at_the_next_sign_in(
    services: Services, accounts: Accounts
) -> None:
    weak = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    user = create_user(accounts, "bia", "agent")
    sessions = make_session_factory(services.engine)
    with sessions.begin() as db:
        db.get(User, user.id).password_hash = weak.hash(PASSWORD)  # type: ignore[union-attr]
    strong = Passwords(PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    rewire(services, clock=ManualClock(), passwords=strong)

    services.accounts.authn.login("bia", PASSWORD, None, origin=SYSTEM)

    with sessions() as db:
        upgraded = db.scalar(select(User.password_hash).where(User.id == user.id))
    assert upgraded is not None
    assert "t=2" in upgraded
    assert not strong.needs_rehash(upgraded)


def test_the_policy_names_every_rule_a_password_breaks(client: TestClient, accounts: Accounts) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "ana", "agent"))

    refused = change(client, csrf, PASSWORD, "anaana")

    body = refused.json()  # type: ignore[attr-defined]
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert body["code"] == "password_rejected"
    assert {p["code"] for p in body["problems"]} == {"too_short", "contains_username", "too_simple"}
    assert "12 caracteres" in next(p["detail"] for p in body["problems"] if p["code"] == "too_short")


def test_the_last_passwords_cannot_come_back_but_older_ones_can(client: TestClient, accounts: Accounts) -> None:
    user = create_user(accounts, "davi", "agent")
    csrf = sign_in_directly(client, accounts, user)
    history = [PASSWORD, "segunda-senha-boa", "terceira-senha-boa", "quarta-senha-boa"]
    for current, new in itertools.pairwise(history):
        answer = change(client, csrf, current, new)
        csrf = answer.json()["csrf_token"]  # type: ignore[attr-defined]

    recent = change(client, csrf, history[-1], history[-2])
    oldest = change(client, csrf, history[-1], history[0])

    assert recent.status_code == 422  # type: ignore[attr-defined]
    assert [p["code"] for p in recent.json()["problems"]] == ["reused"]  # type: ignore[attr-defined]
    # History keeps 3: the first password dropped out of it.
    assert oldest.status_code == 200  # type: ignore[attr-defined]


def test_changing_the_password_rotates_this_session_and_ends_every_other(
    client: TestClient, accounts: Accounts
) -> None:
    user = create_user(accounts, "eva", "agent")
    other_browser = TestClient(client.app, base_url=BASE)
    sign_in_directly(other_browser, accounts, user)
    csrf = sign_in_directly(client, accounts, user)
    before = client.cookies.get("__Host-atende_session")

    changed = change(client, csrf, PASSWORD, "uma-senha-nova-boa")

    assert changed.status_code == 200  # type: ignore[attr-defined]
    assert client.cookies.get("__Host-atende_session") != before
    assert client.get("/api/auth/me").status_code == 200
    assert other_browser.get("/api/auth/me").status_code == 401
    assert login(client, "eva", "uma-senha-nova-boa").status_code == 200
    assert services_audit(client).of("user.password_changed")[0].object_id == str(user.id)


def services_audit(client: TestClient) -> RecordingAudit:
    audit = client.app.state.services.audit  # type: ignore[attr-defined]
    assert isinstance(audit, RecordingAudit)
    return audit


def test_a_wrong_current_password_counts_towards_the_lock_out(client: TestClient, accounts: Accounts) -> None:
    user = create_user(accounts, "fabi", "agent")
    csrf = sign_in_directly(client, accounts, user)

    answers = [change(client, csrf, "nao-e-a-senha-atual", "outra-senha-boa").status_code for _ in range(5)]  # type: ignore[attr-defined]

    assert answers == [403] * 5
    assert accounts.directory.require(user.id).locked(accounts.clock())


def test_an_expired_password_confines_the_session_to_changing_it(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    create_user(accounts, "gil", "agent")
    clock.advance(days=91)

    signed_in = login(client, "gil")
    csrf = signed_in.json()["csrf_token"]
    elsewhere = client.get("/api/users")
    changed = change(client, csrf, PASSWORD, "senha-renovada-boa")

    assert signed_in.json()["restrictions"] == ["password_change_required"]
    assert signed_in.json()["permissions"] == []
    assert elsewhere.json()["code"] == "password_change_required"
    assert changed.json()["restrictions"] == []  # type: ignore[attr-defined]


def test_a_temporary_password_must_be_replaced_at_the_first_sign_in(client: TestClient, accounts: Accounts) -> None:
    user, temporary = accounts.directory.create_user("hugo", "supervisor", actor="system", origin=SYSTEM)
    assert temporary

    first = login(client, "hugo", temporary)
    blocked = client.get("/api/teams")
    changed = change(client, first.json()["csrf_token"], temporary, "senha-definitiva-boa")
    allowed = client.get("/api/teams")

    assert first.json()["restrictions"] == ["password_change_required"]
    assert blocked.status_code == 403
    assert changed.status_code == 200  # type: ignore[attr-defined]
    assert allowed.status_code == 200
    assert user.must_change_password


def test_an_administrator_reset_hands_over_a_temporary_password_and_ends_sessions(
    client: TestClient, accounts: Accounts
) -> None:
    user = create_user(accounts, "iris", "agent")
    member = TestClient(client.app, base_url=BASE)
    sign_in_directly(member, accounts, user)
    admin_csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))

    reset = client.post(f"/api/users/{user.id}/reset-password", headers={"X-CSRF-Token": admin_csrf}).json()

    assert member.get("/api/auth/me").status_code == 401
    assert login(member, "iris", PASSWORD).status_code == 401
    assert login(member, "iris", reset["temporary_password"]).json()["restrictions"] == ["password_change_required"]


def test_password_history_keeps_only_as_many_hashes_as_configured(services: Services, accounts: Accounts) -> None:
    user = create_user(accounts, "juca", "agent")
    passwords = [PASSWORD, *(f"senha-numero-{n}-boa" for n in range(5))]
    for current, new in itertools.pairwise(passwords):
        accounts.authn.change_password(user.id, current, new, origin=SYSTEM, session_cookie=None)

    with make_session_factory(services.engine)() as db:
        kept = db.scalars(select(PasswordHistory).where(PasswordHistory.user_id == user.id)).all()
    assert len(kept) == 3


def test_the_policy_accepts_a_long_varied_password() -> None:
    assert PasswordPolicy(min_length=12).problems("frase longa e variada", username="ana") == []

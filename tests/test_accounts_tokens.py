"""API tokens (scopes, expiry, revocation, storage) and who sees whose records: teams, supervisors, integrators."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services, build_services
from core.accounts.models import ApiToken
from core.accounts.service import Accounts
from core.accounts.teams import descendants
from core.accounts.testing import ManualClock, RecordingAudit, create_user, rewire, sign_in_directly, with_settings
from core.accounts.types import SYSTEM, AccountError
from core.db import make_session_factory
from core.settings import Settings

BASE = "https://testserver"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def services(test_settings: Settings) -> Iterator[Services]:
    svc = build_services(with_settings(test_settings, totp_required_roles=""), model=ScriptedChatModel([]))
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


@pytest.fixture
def teams(accounts: Accounts) -> dict[str, int]:
    """Secretaria de Saúde > (Atendimento, Regulação > Marcação); Finanças apart."""
    made: dict[str, int] = {}
    for name, parent in [
        ("Saúde", None),
        ("Atendimento", "Saúde"),
        ("Regulação", "Saúde"),
        ("Marcação", "Regulação"),
        ("Finanças", None),
    ]:
        made[name] = accounts.directory.create_team(name, parent=parent, actor="system", origin=SYSTEM).id
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- tokens ----------------------------------------------------------------------------------------------


def test_an_integration_token_carries_exactly_its_scopes(accounts: Accounts) -> None:
    issued = accounts.tokens.issue(
        name="ouvidoria", scopes=["protocols:read", "citizens:read"], created_by="system", integration="ouvidoria"
    )

    principal = accounts.tokens.verify(issued.token)

    assert principal is not None
    assert (principal.kind, principal.subject) == ("integration", "integration:ouvidoria")
    assert principal.scopes == {"protocols:read", "citizens:read"}


def test_tokens_are_stored_only_as_digests(services: Services, accounts: Accounts) -> None:
    issued = accounts.tokens.issue(name="x", scopes=["kb:read"], created_by="system", integration="portal")

    with make_session_factory(services.engine)() as db:
        row = db.scalar(select(ApiToken))

    assert row is not None
    assert row.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in repr(row.__dict__)


def test_a_token_stops_working_when_it_expires(accounts: Accounts, clock: ManualClock) -> None:
    issued = accounts.tokens.issue(
        name="x", scopes=["kb:read"], created_by="system", integration="portal", expires_in=timedelta(days=30)
    )
    clock.advance(days=29, hours=23)
    assert accounts.tokens.verify(issued.token) is not None

    clock.advance(hours=1)

    assert accounts.tokens.verify(issued.token) is None


def test_a_revoked_token_is_refused_at_once(client: TestClient, accounts: Accounts) -> None:
    issued = accounts.tokens.issue(name="x", scopes=["users:admin"], created_by="system", integration="rh")
    assert client.get("/api/teams", headers=bearer(issued.token)).status_code == 200

    accounts.tokens.revoke(issued.info.id, actor="system")
    refused = client.get("/api/teams", headers=bearer(issued.token))

    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    assert refused.headers["www-authenticate"].startswith("Bearer")


def test_unknown_scopes_and_ownerless_tokens_are_refused(accounts: Accounts) -> None:
    with pytest.raises(AccountError) as unknown:
        accounts.tokens.issue(name="x", scopes=["tudo:liberado"], created_by="system", integration="x")
    with pytest.raises(AccountError) as ownerless:
        accounts.tokens.issue(name="x", scopes=["kb:read"], created_by="system")

    assert unknown.value.code == "unknown_scope"
    assert ownerless.value.code == "token_owner"


def test_a_token_issued_through_the_api_is_shown_once_and_audited(
    client: TestClient, accounts: Accounts, services: Services
) -> None:
    admin = create_user(accounts, "root", "admin")
    csrf = sign_in_directly(client, accounts, admin)

    issued = client.post(
        "/api/tokens",
        json={"name": "Portal", "scopes": ["kb:read"], "integration": "portal", "expires_in_days": 90},
        headers={"X-CSRF-Token": csrf},
    ).json()
    listed = client.get("/api/tokens").json()["tokens"]

    assert issued["token"].startswith("atd_")
    assert issued["expires_at"].startswith("2027-02-21")
    assert [t["prefix"] for t in listed] == [issued["prefix"]]
    assert "token" not in listed[0]
    assert isinstance(services.audit, RecordingAudit)
    created = services.audit.of("token.created")
    assert (created[0].actor, created[0].details["owner"]) == (f"user:{admin.id}", "integration:portal")


def test_an_integrator_cannot_grant_the_audit_or_data_subject_scopes(client: TestClient, accounts: Accounts) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "equipe-ti", "integrator"))

    def issue(scopes: list[str]) -> Any:
        body = {"name": "x", "scopes": scopes, "integration": "sistema"}
        return client.post("/api/tokens", json=body, headers={"X-CSRF-Token": csrf})

    refused = issue(["protocols:read", "audit:read", "lgpd:erase"])
    granted = issue(["protocols:read"])

    assert (refused.status_code, refused.json()["code"]) == (403, "scope_not_grantable")
    assert "audit:read" in refused.json()["detail"]
    assert granted.status_code == 201


def test_an_integrator_sees_and_revokes_only_the_tokens_they_issued(client: TestClient, accounts: Accounts) -> None:
    others = accounts.tokens.issue(name="x", scopes=["kb:read"], created_by="user:999", integration="alheio")
    csrf = sign_in_directly(client, accounts, create_user(accounts, "equipe-ti", "integrator"))
    mine = client.post(
        "/api/tokens", json={"name": "m", "scopes": ["kb:read"], "integration": "meu"}, headers={"X-CSRF-Token": csrf}
    ).json()

    listed = [t["id"] for t in client.get("/api/tokens").json()["tokens"]]
    foreign = client.delete(f"/api/tokens/{others.info.id}", headers={"X-CSRF-Token": csrf})
    own = client.delete(f"/api/tokens/{mine['id']}", headers={"X-CSRF-Token": csrf})

    assert listed == [mine["id"]]
    assert foreign.status_code == 404
    assert accounts.tokens.verify(others.token) is not None
    assert own.json()["revoked_at"] is not None


def test_the_mcp_verifier_accepts_tokens_from_the_database(services: Services, accounts: Accounts) -> None:
    issued = accounts.tokens.issue(name="x", scopes=["protocols:read"], created_by="system", integration="mcp-client")

    assert services.token_verifier is not None
    principal = services.token_verifier.verify(issued.token)

    assert principal is not None
    assert principal.subject == "integration:mcp-client"


# --- teams and who sees whom -------------------------------------------------------------------------------


def test_a_supervisor_sees_their_team_and_every_team_below_it(accounts: Accounts, teams: dict[str, int]) -> None:
    supervisor = create_user(accounts, "sup", "supervisor", team=teams["Saúde"])
    agent = create_user(accounts, "agente", "agent", team=teams["Regulação"])
    admin = create_user(accounts, "root", "admin")

    assert supervisor.team_ids == {teams["Saúde"], teams["Atendimento"], teams["Regulação"], teams["Marcação"]}
    assert agent.team_ids == {teams["Regulação"]}
    assert admin.team_ids == set(teams.values())


def test_a_supervisor_lists_and_opens_only_accounts_of_their_teams(
    client: TestClient, accounts: Accounts, teams: dict[str, int]
) -> None:
    sup = create_user(accounts, "sup", "supervisor", team=teams["Regulação"])
    below = create_user(accounts, "marcacao", "agent", team=teams["Marcação"])
    beside = create_user(accounts, "financas", "agent", team=teams["Finanças"])
    sign_in_directly(client, accounts, sup)

    listed = {u["username"] for u in client.get("/api/users").json()["users"]}
    inside = client.get(f"/api/users/{below.id}")
    outside = client.get(f"/api/users/{beside.id}")

    assert listed == {"sup", "marcacao"}
    assert inside.status_code == 200
    # Someone else's team answers exactly like an id that does not exist.
    assert outside.status_code == 404
    assert outside.json() == client.get("/api/users/999999").json()


def test_a_team_cannot_be_moved_under_its_own_descendant(
    client: TestClient, accounts: Accounts, teams: dict[str, int]
) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))

    cycle = client.patch(
        f"/api/teams/{teams['Saúde']}", json={"parent_id": teams["Marcação"]}, headers={"X-CSRF-Token": csrf}
    )
    moved = client.patch(
        f"/api/teams/{teams['Marcação']}", json={"parent_id": teams["Finanças"]}, headers={"X-CSRF-Token": csrf}
    )

    assert (cycle.status_code, cycle.json()["code"]) == (422, "team_cycle")
    assert moved.json()["team"]["parent_id"] == teams["Finanças"]


def test_descendants_survive_a_cycle_already_in_the_data() -> None:
    assert descendants([(1, 2), (2, 1), (3, 1)], 1) == {1, 2, 3}


def test_an_administrator_creates_an_account_with_a_temporary_password(
    client: TestClient, accounts: Accounts, teams: dict[str, int]
) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))

    created = client.post(
        "/api/users",
        json={
            "username": "Nova.Atendente",
            "role": "agent",
            "team_id": teams["Atendimento"],
            "email": "nova@exemplo.gov.br",
        },
        headers={"X-CSRF-Token": csrf},
    )
    duplicate = client.post(
        "/api/users", json={"username": "nova.atendente", "role": "agent"}, headers={"X-CSRF-Token": csrf}
    )

    assert created.status_code == 201
    body = created.json()
    assert body["user"]["username"] == "nova.atendente"
    assert body["user"]["must_change_password"] is True
    assert len(body["temporary_password"]) >= 16
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "user_exists")


def test_nobody_demotes_or_disables_themselves(client: TestClient, accounts: Accounts) -> None:
    admin = create_user(accounts, "root", "admin")
    csrf = sign_in_directly(client, accounts, admin)

    answer = client.patch(f"/api/users/{admin.id}", json={"role": "agent"}, headers={"X-CSRF-Token": csrf})

    assert (answer.status_code, answer.json()["code"]) == (409, "cannot_change_self")
    assert accounts.directory.require(admin.id).role == "admin"


# --- personal data, approval and expiry ----------------------------------------------------------------------


def test_an_integrator_cannot_grant_personal_data_or_the_assistant_scope(
    client: TestClient, accounts: Accounts
) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "equipe-ti", "integrator"))

    def issue(scopes: list[str]) -> Any:
        body = {"name": "x", "scopes": scopes, "integration": "sistema"}
        return client.post("/api/tokens", json=body, headers={"X-CSRF-Token": csrf})

    pii = issue(["citizens:read", "citizens:pii"])
    assistant = issue(["assistant"])

    assert (pii.status_code, pii.json()["code"]) == (403, "scope_not_grantable")
    assert "citizens:pii" in pii.json()["detail"]
    assert (assistant.status_code, assistant.json()["code"]) == (403, "scope_not_grantable")


def test_an_integrators_data_token_waits_for_an_administrator_and_works_once_approved(
    client: TestClient, accounts: Accounts, services: Services
) -> None:
    integrator = create_user(accounts, "equipe-ti", "integrator")
    admin = create_user(accounts, "root", "admin")
    csrf = sign_in_directly(client, accounts, integrator)
    issued = client.post(
        "/api/tokens",
        json={"name": "dívida ativa", "scopes": ["citizens:read", "payments:read"], "integration": "divida"},
        headers={"X-CSRF-Token": csrf},
    )
    body = issued.json()
    assert issued.status_code == 201
    assert body["status"] == "pending"
    assert "administrador" in body["notice"]
    assert accounts.tokens.verify(body["token"]) is None
    refused = client.get("/api/lgpd/consent?cpf=52998224725", headers=bearer(body["token"]))
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")

    # The integrator cannot approve their own token.
    self_approved = client.post(f"/api/tokens/{body['id']}/approve", headers={"X-CSRF-Token": csrf})
    assert self_approved.status_code == 403
    assert accounts.tokens.verify(body["token"]) is None

    client.cookies.clear()
    admin_csrf = sign_in_directly(client, accounts, admin)
    approved = client.post(f"/api/tokens/{body['id']}/approve", headers={"X-CSRF-Token": admin_csrf})

    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("approved", f"user:{admin.id}")
    principal = accounts.tokens.verify(body["token"])
    assert principal is not None
    assert principal.scopes == {"citizens:read", "payments:read"}
    assert isinstance(services.audit, RecordingAudit)
    [event] = services.audit.of("token.approved")
    assert (event.actor, event.object_id) == (f"user:{admin.id}", str(body["id"]))


def test_an_integrators_token_without_data_scopes_works_at_once(client: TestClient, accounts: Accounts) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "equipe-ti", "integrator"))

    body = client.post(
        "/api/tokens",
        json={"name": "kb", "scopes": ["kb:read"], "integration": "portal"},
        headers={"X-CSRF-Token": csrf},
    ).json()

    assert body["status"] == "approved"
    assert accounts.tokens.verify(body["token"]) is not None


def test_an_administrators_data_token_is_approved_when_issued(client: TestClient, accounts: Accounts) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))

    body = client.post(
        "/api/tokens",
        json={"name": "x", "scopes": ["citizens:read", "citizens:pii"], "integration": "ouvidoria"},
        headers={"X-CSRF-Token": csrf},
    ).json()

    assert body["status"] == "approved"
    assert accounts.tokens.verify(body["token"]) is not None


def test_an_integration_token_that_may_approve_cannot_approve_what_it_issued(
    client: TestClient, accounts: Accounts
) -> None:
    delegate = accounts.tokens.issue(
        name="x", scopes=["users:admin", "tokens:approve", "payments:read"], created_by="system", integration="rh"
    ).token
    issued = client.post(
        "/api/tokens",
        json={"name": "y", "scopes": ["payments:read"], "integration": "divida"},
        headers=bearer(delegate),
    ).json()

    refused = client.post(f"/api/tokens/{issued['id']}/approve", headers=bearer(delegate))

    assert issued["status"] == "pending"
    assert (refused.status_code, refused.json()["code"]) == (403, "token_self_approval")
    assert accounts.tokens.verify(issued["token"]) is None


def test_the_command_line_approves_a_pending_token(accounts: Accounts) -> None:
    pending = accounts.tokens.issue(
        name="x", scopes=["payments:read"], created_by="user:5", integration="divida", issuer_is_admin=False
    )
    assert pending.info.pending
    assert accounts.tokens.verify(pending.token) is None

    approved = accounts.tokens.approve(pending.info.id, actor="system")

    assert approved is not None
    assert not approved.pending
    assert accounts.tokens.verify(pending.token) is not None


def test_a_revoked_token_cannot_be_approved(accounts: Accounts) -> None:
    pending = accounts.tokens.issue(
        name="x", scopes=["payments:read"], created_by="user:5", integration="divida", issuer_is_admin=False
    )
    accounts.tokens.revoke(pending.info.id, actor="system")

    with pytest.raises(AccountError) as refused:
        accounts.tokens.approve(pending.info.id, actor="system")

    assert refused.value.code == "token_revoked"
    assert accounts.tokens.verify(pending.token) is None


def test_every_token_expires_after_the_maximum_lifetime_when_none_is_given(
    client: TestClient, accounts: Accounts, clock: ManualClock
) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))
    body = client.post(
        "/api/tokens",
        json={"name": "x", "scopes": ["kb:read"], "integration": "portal"},
        headers={"X-CSRF-Token": csrf},
    ).json()

    assert body["expires_at"].startswith("2027-02-21")  # 90 days after 2026-11-23
    clock.advance(days=90)
    assert accounts.tokens.verify(body["token"]) is None


def test_a_lifetime_beyond_the_maximum_is_refused(client: TestClient, accounts: Accounts) -> None:
    csrf = sign_in_directly(client, accounts, create_user(accounts, "root", "admin"))

    refused = client.post(
        "/api/tokens",
        json={"name": "x", "scopes": ["kb:read"], "integration": "portal", "expires_in_days": 365},
        headers={"X-CSRF-Token": csrf},
    )

    assert (refused.status_code, refused.json()["code"]) == (422, "token_expiry_too_long")
    assert "90" in refused.json()["detail"]


def test_the_maximum_lifetime_follows_the_setting(services: Services, clock: ManualClock) -> None:
    accounts = rewire(services, clock=clock, settings=with_settings(services.settings, token_max_days=7))

    issued = accounts.tokens.issue(name="x", scopes=["kb:read"], created_by="system", integration="portal")

    assert issued.info.expires_at == clock.now + timedelta(days=7)
    with pytest.raises(AccountError):
        accounts.tokens.issue(
            name="x", scopes=["kb:read"], created_by="system", integration="p", expires_in=timedelta(days=8)
        )


def test_a_token_row_without_an_expiry_does_not_authenticate(services: Services, accounts: Accounts) -> None:
    issued = accounts.tokens.issue(name="x", scopes=["kb:read"], created_by="system", integration="portal")
    with make_session_factory(services.engine).begin() as db:
        row = db.get(ApiToken, issued.info.id)
        assert row is not None
        row.expires_at = None

    assert accounts.tokens.verify(issued.token) is None

"""LGPD over HTTP: who may export, erase and see consent; what they get; and what the audit trail then shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lgpd_support import CPF, EMAIL, PHONE, lgpd_services, lgpd_settings, sign_in

from atende.app import create_app
from atende.services import Services
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, rewire
from core.audit import AuditLog, AuditQuery
from core.i18n import t
from core.privacy import configure_masker, mask

REF = "citizen:42"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    svc = lgpd_services(lgpd_settings(tmp_path, totp_required_roles=""))
    yield svc
    svc.close()
    configure_masker(None)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services=services, warm_model=False)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def accounts(services: Services, client: TestClient) -> Accounts:
    return rewire(services, clock=ManualClock())


@pytest.fixture
def audit(services: Services) -> AuditLog:
    assert isinstance(services.audit, AuditLog)
    return services.audit


@pytest.fixture
def conversation(services: Services) -> str:
    conv = services.store.create_conversation("web", citizen_ref=REF)
    services.store.add_message(conv.id, "user", f"CPF {CPF}, e-mail {EMAIL}, telefone {PHONE}")
    return conv.id


# Export


def test_a_supervisor_exports_a_citizens_data_as_json(
    client: TestClient, accounts: Accounts, audit: AuditLog, conversation: str
) -> None:
    headers, actor = sign_in(client, accounts, "supervisor")

    response = client.post("/api/lgpd/export", json={"citizen_id": "42"}, headers=headers)

    assert response.status_code == 200
    (exported,) = response.json()["sources"]["conversations"]["conversations"]
    assert exported["id"] == conversation
    assert CPF in exported["messages"][0]["text"]
    (record,) = audit.search(AuditQuery(action="lgpd.export"))
    assert (record.actor, record.subject, record.user_agent) == (actor, REF, "pytest-staff-browser")
    # The route's own record replaces the generic per-request one.
    assert audit.search(AuditQuery(object_type="route")) == []


def test_the_readable_export_is_an_html_attachment(client: TestClient, accounts: Accounts, conversation: str) -> None:
    headers, _ = sign_in(client, accounts, "admin")

    response = client.post("/api/lgpd/export", json={"citizen_refs": [REF], "format": "html"}, headers=headers)

    assert response.headers["content-type"].startswith("text/html")
    assert "attachment" in response.headers["content-disposition"]
    assert t("lgpd.export.title") in response.text
    assert EMAIL in response.text


def test_agents_cannot_export_and_only_administrators_erase(client: TestClient, accounts: Accounts) -> None:
    body = {"citizen_id": "42", "confirm": True}
    for role, path, status in (
        ("agent", "/api/lgpd/export", 403),
        ("supervisor", "/api/lgpd/erase", 403),
        ("agent", "/api/lgpd/erase", 403),
    ):
        headers, _ = sign_in(client, accounts, role)
        assert client.post(path, json=body, headers=headers).status_code == status, (role, path)


def test_an_integration_token_with_the_export_scope_exports(
    client: TestClient, accounts: Accounts, audit: AuditLog, conversation: str
) -> None:
    client.cookies.clear()
    issued = accounts.tokens.issue(name="ouvidoria", scopes=["lgpd:export"], created_by="test", integration="ouvidoria")

    response = client.post(
        "/api/lgpd/export", json={"citizen_id": "42"}, headers={"Authorization": f"Bearer {issued.token}"}
    )

    assert response.status_code == 200
    (record,) = audit.search(AuditQuery(action="lgpd.export"))
    assert record.actor.startswith("integration:")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_subject"),
        ({"cpf": "111.111.111-12"}, "invalid_subject"),
        ({"citizen_refs": [""]}, "invalid_subject"),
    ],
)
def test_a_request_without_a_valid_citizen_gets_a_pt_br_error(
    client: TestClient, accounts: Accounts, body: dict[str, object], code: str
) -> None:
    headers, _ = sign_in(client, accounts, "admin")

    response = client.post("/api/lgpd/export", json=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert "CPF" in response.json()["detail"]


# Erase


def test_erasing_needs_an_explicit_confirmation(client: TestClient, accounts: Accounts, conversation: str) -> None:
    headers, _ = sign_in(client, accounts, "admin")

    response = client.post("/api/lgpd/erase", json={"citizen_id": "42"}, headers=headers)

    assert response.status_code == 422
    assert client.app.state.services.store.list_messages(conversation)[0].text.startswith("CPF")  # type: ignore[attr-defined]


def test_an_administrator_erases_a_citizen_and_the_trail_shows_who_and_when(
    client: TestClient, accounts: Accounts, audit: AuditLog, services: Services, conversation: str
) -> None:
    headers, actor = sign_in(client, accounts, "admin")

    response = client.post("/api/lgpd/erase", json={"citizen_id": "42", "confirm": True}, headers=headers)

    assert response.status_code == 200
    assert response.json()["subject"] == REF
    assert response.json()["rows"]["conversations"] >= 2
    assert services.store.list_messages(conversation)[0].text == t("lgpd.anonymised_text")
    (record,) = audit.search(AuditQuery(action="lgpd.erase", subject=REF))
    assert record.actor == actor


# Consent


def test_staff_record_consent_on_the_citizens_behalf_and_reading_it_is_audited(
    client: TestClient, accounts: Accounts, audit: AuditLog, services: Services
) -> None:
    headers, agent = sign_in(client, accounts, "agent")

    created = client.post(
        "/api/lgpd/consent",
        json={
            "citizen_ref": REF,
            "channel": "whatsapp",
            "purpose": "campanhas",
            "status": "opt_out",
            "via": "telefone",
        },
        headers=headers,
    )
    shown = client.get("/api/lgpd/consent", params={"citizen_ref": REF})

    assert created.status_code == 201
    assert created.json()["source"] == f"staff:{agent} (telefone)"
    assert [e["status"] for e in shown.json()["history"]] == ["opt_out"]
    assert services.lgpd is not None
    assert not services.lgpd.consent.is_opted_in(REF, "whatsapp", "campanhas")
    actions = [r.action for r in audit.search(AuditQuery(subject=REF))]
    assert actions == ["consent.pii_read", "consent.opt_out"]


def test_a_malformed_consent_is_refused_in_pt_br(client: TestClient, accounts: Accounts) -> None:
    headers, _ = sign_in(client, accounts, "agent")
    body = {"citizen_ref": REF, "channel": "WhatsApp!", "purpose": "campanhas", "status": "opt_in"}

    response = client.post("/api/lgpd/consent", json=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_consent"


# Who saw this citizen's data


def test_an_auditor_finds_everyone_who_saw_a_citizens_data(
    client: TestClient, accounts: Accounts, conversation: str
) -> None:
    headers, supervisor = sign_in(client, accounts, "supervisor")
    client.post("/api/lgpd/export", json={"citizen_id": "42"}, headers=headers)
    _, agent = sign_in(client, accounts, "agent")
    client.get("/api/lgpd/consent", params={"citizen_ref": REF})
    sign_in(client, accounts, "admin")

    items = client.get("/api/audit/events", params={"subject": REF}).json()["items"]

    assert [(i["actor"], i["action"]) for i in items] == [
        (agent, "consent.pii_read"),
        (supervisor, "lgpd.export"),
    ]
    assert all(i["occurred_at_local"] for i in items)


# Extra personal-data patterns


def test_an_administrator_adds_and_removes_a_pattern_and_masking_follows(
    client: TestClient, accounts: Accounts, audit: AuditLog
) -> None:
    headers, _ = sign_in(client, accounts, "admin")

    put = client.put("/api/lgpd/pii-patterns/MATRICULA", json={"pattern": r"MAT-\d{6}"}, headers=headers)
    listed = client.get("/api/lgpd/pii-patterns").json()["patterns"]
    masked = mask("servidor MAT-123456")
    deleted = client.delete("/api/lgpd/pii-patterns/MATRICULA", headers=headers)
    again = client.delete("/api/lgpd/pii-patterns/MATRICULA", headers=headers)

    assert put.status_code == 200
    assert [(p["kind"], p["origin"]) for p in listed] == [("MATRICULA", "database")]
    assert masked == "servidor [MATRICULA]"
    assert deleted.status_code == 204
    assert mask("servidor MAT-123456") == "servidor MAT-123456"
    assert (again.status_code, again.json()["code"]) == (404, "pattern_not_found")
    assert [r.action for r in audit.search(AuditQuery(object_type="pii_pattern"))] == [
        "pii_pattern.remove",
        "pii_pattern.put",
    ]


def test_an_unusable_pattern_is_refused_with_the_reason(client: TestClient, accounts: Accounts) -> None:
    headers, _ = sign_in(client, accounts, "admin")

    response = client.put("/api/lgpd/pii-patterns/PLACA", json={"pattern": "([A-Z"}, headers=headers)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_pattern"
    assert "does not compile" in response.json()["detail"]


def test_only_administrators_manage_patterns(client: TestClient, accounts: Accounts) -> None:
    headers, _ = sign_in(client, accounts, "supervisor")

    response = client.put("/api/lgpd/pii-patterns/PLACA", json={"pattern": "ABC"}, headers=headers)

    assert response.status_code == 403

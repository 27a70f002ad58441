"""The audit trail over HTTP: every mutating staff route leaves a record; auditors search, verify and export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lgpd_support import lgpd_services, lgpd_settings, sign_in
from openpyxl import load_workbook
from sqlalchemy import text

from atende.app import create_app
from atende.services import Services
from core.accounts import permissions
from core.accounts.access import iter_routes
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, rewire
from core.audit import AuditEvent, AuditLog, AuditQuery
from core.audit_http import MUTATING_METHODS

PARAMETER = re.compile(r"\{[^}]+\}")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    svc = lgpd_services(lgpd_settings(tmp_path, totp_required_roles=""))
    yield svc
    svc.close()


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


def route_records(audit: AuditLog, label: str) -> list[dict[str, object]]:
    return [r.as_dict() for r in audit.search(AuditQuery(object_type="route", object_id=label))]


# Every mutating staff route


def test_every_mutating_staff_route_writes_an_audit_record(
    client: TestClient, accounts: Accounts, audit: AuditLog
) -> None:
    routes = sorted(
        {
            (r.method, r.path)
            for r in iter_routes(client.app)  # type: ignore[arg-type]
            if r.method in MUTATING_METHODS and r.access != permissions.PUBLIC
        }
    )
    assert ("POST", "/api/lgpd/erase") in routes
    assert ("POST", "/api/users") in routes
    missing = []
    for method, path in routes:
        # A fresh session each time: a call such as logout must not leave the next one anonymous.
        headers, _ = sign_in(client, accounts, "admin")
        before = audit.head()[0]
        client.request(method, PARAMETER.sub("999999", path), json={}, headers=headers)
        new = [r for r in audit.search(limit=50) if r.sequence > before]
        if not new:
            missing.append(f"{method} {path}")
    assert missing == []
    assert audit.verify().ok


def test_the_generic_record_names_the_actor_route_status_ip_and_user_agent(
    client: TestClient, accounts: Accounts, audit: AuditLog
) -> None:
    headers, actor = sign_in(client, accounts, "agent")

    response = client.post("/api/lgpd/consent", json={"citizen_ref": "citizen:1"}, headers=headers)

    assert response.status_code == 422
    (record,) = route_records(audit, "POST /api/lgpd/consent")
    assert record["actor"] == actor
    assert record["action"] == "http.post"
    assert record["details"] == {"status": 422, "path": "/api/lgpd/consent", "access": "consent.write"}
    assert record["ip"] == "testclient"
    assert record["user_agent"] == "pytest-staff-browser"


def test_an_anonymous_or_forged_mutation_is_refused_and_still_recorded(
    client: TestClient, accounts: Accounts, audit: AuditLog
) -> None:
    client.cookies.clear()
    anonymous = client.post("/api/lgpd/erase", json={"citizen_id": "1", "confirm": True})
    sign_in(client, accounts, "admin")
    without_csrf = client.post("/api/lgpd/erase", json={"citizen_id": "1", "confirm": True})

    assert (anonymous.status_code, without_csrf.status_code) == (401, 403)
    records = route_records(audit, "POST /api/lgpd/erase")
    assert [(r["actor"], r["details"]["status"]) for r in records] == [  # type: ignore[index]
        ("anonymous", 403),
        ("anonymous", 401),
    ]
    assert audit.search(AuditQuery(action="lgpd.erase")) == []


def test_citizen_facing_routes_are_not_audited_per_request(client: TestClient, audit: AuditLog) -> None:
    client.post("/api/conversations")

    assert [r for r in audit.search() if r.object_type == "route"] == []


# Auditors


def test_only_administrators_read_the_audit_trail(client: TestClient, accounts: Accounts) -> None:
    for role, status in (("supervisor", 403), ("agent", 403), ("admin", 200)):
        sign_in(client, accounts, role)
        assert client.get("/api/audit/events").status_code == status, role


def test_search_answers_newest_first_with_filters_pages_and_local_times(
    client: TestClient, accounts: Accounts, audit: AuditLog
) -> None:
    for n in range(3):
        audit.record(AuditEvent("user:9", "citizen.pii_read", "citizen", str(n), subject=f"citizen:{n}"))
    sign_in(client, accounts, "admin")

    page = client.get("/api/audit/events", params={"actor": "user:9", "limit": 2}).json()
    rest = client.get("/api/audit/events", params={"actor": "user:9", "before": page["next_before"]}).json()
    by_subject = client.get("/api/audit/events", params={"subject": "citizen:1"}).json()

    assert [i["object_id"] for i in page["items"]] == ["2", "1"]
    assert [i["object_id"] for i in rest["items"]] == ["0"]
    assert rest["next_before"] is None
    assert [i["object_id"] for i in by_subject["items"]] == ["1"]
    assert page["items"][0]["occurred_at_local"].endswith("-03:00")


def test_a_malformed_date_filter_gets_a_pt_br_error(client: TestClient, accounts: Accounts) -> None:
    sign_in(client, accounts, "admin")

    response = client.get("/api/audit/events", params={"since": "ontem"})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_query"
    assert "datas" in response.json()["detail"]


def test_verify_reports_an_intact_chain_then_the_edited_record(
    client: TestClient, accounts: Accounts, audit: AuditLog, services: Services
) -> None:
    for n in range(3):
        audit.record(AuditEvent("user:9", "citizen.read", "citizen", str(n)))
    sign_in(client, accounts, "admin")
    assert client.get("/api/audit/verify").json()["ok"] is True

    with services.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("UPDATE audit_log SET object_id = 'x' WHERE sequence = 2"))

    body = client.get("/api/audit/verify").json()
    assert (body["ok"], body["first_broken"]) == (False, 2)


def test_a_csv_export_is_downloaded_and_the_export_itself_is_audited(
    client: TestClient, accounts: Accounts, audit: AuditLog
) -> None:
    audit.record(AuditEvent("user:9", "citizen.read", "citizen", "5"))
    _, actor = sign_in(client, accounts, "admin")

    response = client.get("/api/audit/export", params={"format": "csv", "actor": "user:9"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["actor"], r["object_id"]) for r in rows] == [("user:9", "5")]
    (export,) = audit.search(AuditQuery(action="audit.export"))
    assert export.actor == actor
    assert export.details == {"format": "csv", "actor": "user:9"}


def test_an_xlsx_export_opens_as_a_workbook(client: TestClient, accounts: Accounts, audit: AuditLog) -> None:
    audit.record(AuditEvent("user:9", "citizen.read", "citizen", "5"))
    sign_in(client, accounts, "admin")

    response = client.get("/api/audit/export", params={"format": "xlsx", "action": "citizen.read"})

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    assert [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["user:9"]

"""Active campaigns through the staff API: opted-in segment, sending window, pacing and the delivery report."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select, update
from whatsapp_support import (
    NUMBER,
    encode,
    message_body,
    signed_headers,
    staff_token,
    status_body,
    whatsapp_settings,
)

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from channels.whatsapp.campaigns import SendingWindow
from channels.whatsapp.models import CampaignRow
from channels.whatsapp.service import WhatsAppService
from core.models import utcnow
from core.settings import Settings
from rag.types import Document

EVERY_HOUR = {"days": [1, 2, 3, 4, 5, 6, 7], "start_hour": 0, "end_hour": 24}


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture
def services(test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]) -> Iterator[Services]:
    svc = make_services(whatsapp_settings(test_settings, graph.url), ScriptedChatModel([]), knowledge_documents)
    yield svc
    svc.close()


@pytest.fixture
def wa(services: Services) -> WhatsAppService:
    assert services.whatsapp is not None
    return services.whatsapp


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services)) as test_client:
        yield test_client


@pytest.fixture
def staff(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {staff_token(services)}"}


def ref(citizen: int) -> str:
    return f"whatsapp:BR.{citizen:020d}"


@pytest.fixture
def audience(client: TestClient, wa: WhatsAppService, staff: dict[str, str]) -> None:
    """Five citizens wrote days ago (their windows are closed); 1-3 opted in to campaigns, 4 opted in then out."""
    for citizen in range(1, 6):
        body = message_body(wamid=f"wamid.in{citizen}", text="Olá", citizen=citizen, at=time.time() - 3 * 86400)
        raw = encode(body)
        assert client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw)).status_code == 200
    wa.drain()  # the late replies to those old messages fail: outside the window
    for citizen in (1, 2, 3, 4):
        wa.consent.record(ref(citizen), "whatsapp", "campanhas", "opt_in", "web:form")
    wa.consent.record(ref(4), "whatsapp", "*", "opt_out", "whatsapp:keyword SAIR")
    template = {
        "name": "vacinacao_campanha",
        "category": "MARKETING",
        "body": "Olá! A campanha de vacinação vai até {{1}}.",
        "variables": ["data"],
        "buttons": ["SAIR"],
    }
    response = client.post("/api/whatsapp/templates", json=template, headers=staff)
    assert response.status_code == 201, response.text


def create(client: TestClient, staff: dict[str, str], **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "Vacinação de novembro",
        "template": "vacinacao_campanha",
        "variables": ["30/11"],
        "pace_per_min": 2,
        "start": True,
        **EVERY_HOUR,
    }
    spec.update(overrides)
    response = client.post("/api/whatsapp/campaigns", json=spec, headers=staff)
    assert response.status_code == 201, response.text
    report: dict[str, Any] = response.json()
    return report


def a_minute_passes(wa: WhatsAppService) -> None:
    with wa.sessions() as session:
        session.execute(update(CampaignRow).values(last_enqueued_at=utcnow() - timedelta(seconds=61)))
        session.commit()


@pytest.mark.usefixtures("audience")
def test_a_campaign_reaches_only_opted_in_citizens_at_its_pace_and_reports_delivery(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, staff: dict[str, str]
) -> None:
    report = create(client, staff)
    assert (report["recipients"], report["skipped"], report["pending"]) == (5, 2, 3)

    wa.drain()
    assert len(graph.sends) == 2  # two per minute
    a_minute_passes(wa)
    wa.drain()
    assert len(graph.sends) == 3
    assert {s["json"]["to"] for s in graph.sends} == {"5561900000001", "5561900000002", "5561900000003"}
    assert all(s["json"]["type"] == "template" for s in graph.sends)

    wamids = [s["wamid"] for s in graph.sends]
    for status in ("delivered", "read"):
        raw = encode(status_body(wamids[0], status))
        client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw))
    raw = encode(status_body(wamids[1], "delivered"))
    client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw))
    raw = encode(status_body(wamids[2], "failed"))
    client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw))
    wa.drain()

    final = client.get(f"/api/whatsapp/campaigns/{report['id']}", headers=staff).json()
    assert final["status"] == "done"
    assert {k: final[k] for k in ("sent", "delivered", "read", "failed", "skipped", "pending")} == {
        "sent": 2,
        "delivered": 2,
        "read": 1,
        "failed": 1,
        "skipped": 2,
        "pending": 0,
    }


@pytest.mark.usefixtures("audience")
def test_the_report_exports_to_csv_and_xlsx_without_phone_numbers(
    client: TestClient, wa: WhatsAppService, staff: dict[str, str]
) -> None:
    report = create(client, staff, pace_per_min=10)
    wa.drain()
    response = client.get(f"/api/whatsapp/campaigns/{report['id']}/report.csv", headers=staff)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["citizen_ref"] for r in rows] == [ref(i) for i in range(1, 6)]
    assert [r["recipient_state"] for r in rows][3:] == ["skipped:no_opt_in", "skipped:no_opt_in"]
    assert "55619" not in response.text

    workbook = client.get(f"/api/whatsapp/campaigns/{report['id']}/report.xlsx", headers=staff)
    assert workbook.status_code == 200
    book = load_workbook(io.BytesIO(workbook.content))
    assert book.sheetnames == ["resumo", "destinatarios"]
    summary = {row[0]: row[1] for row in book["resumo"].iter_rows(values_only=True)}
    assert (summary["recipients"], summary["sent"], summary["skipped"]) == (5, 3, 2)
    assert book["destinatarios"].max_row == 6


@pytest.mark.usefixtures("audience")
def test_nothing_is_sent_outside_the_sending_window(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, staff: dict[str, str]
) -> None:
    today = datetime.now(UTC).astimezone(SendingWindow().zone).isoweekday()
    create(client, staff, days=[d for d in range(1, 8) if d != today])
    wa.drain()
    assert graph.sends == []


def test_a_sending_window_is_counted_in_sao_paulo_time() -> None:
    window = SendingWindow(days=(1, 2, 3, 4, 5), start_hour=9, end_hour=18)
    monday_noon_brt = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo
    monday_late_brt = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 19:00
    saturday_noon_brt = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert window.contains(monday_noon_brt)
    assert not window.contains(monday_late_brt)
    assert not window.contains(saturday_noon_brt)


@pytest.mark.usefixtures("audience")
def test_a_citizen_who_opts_out_mid_campaign_is_skipped(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, staff: dict[str, str]
) -> None:
    report = create(client, staff, pace_per_min=1)
    wa.drain()
    wa.consent.record(ref(2), "whatsapp", "*", "opt_out", "whatsapp:keyword PARAR")
    a_minute_passes(wa)
    wa.drain()
    a_minute_passes(wa)
    wa.drain()
    assert [s["json"]["to"] for s in graph.sends] == ["5561900000001", "5561900000003"]
    rows = client.get(f"/api/whatsapp/campaigns/{report['id']}/report.csv", headers=staff).text
    assert "skipped:opted_out" in rows


@pytest.mark.usefixtures("audience")
def test_a_paused_campaign_sends_nothing_until_resumed(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, staff: dict[str, str]
) -> None:
    report = create(client, staff, pace_per_min=10)
    assert client.post(f"/api/whatsapp/campaigns/{report['id']}/pause", headers=staff).json()["status"] == "paused"
    wa.drain()
    assert graph.sends == []
    assert client.post(f"/api/whatsapp/campaigns/{report['id']}/start", headers=staff).json()["status"] == "running"
    wa.drain()
    assert len(graph.sends) == 3
    again = client.post(f"/api/whatsapp/campaigns/{report['id']}/start", headers=staff)
    assert again.status_code == 422
    assert again.json()["code"] == "campaign_state"


@pytest.mark.usefixtures("audience")
def test_campaign_requests_that_break_the_rules_get_a_pt_br_error(client: TestClient, staff: dict[str, str]) -> None:
    unknown = client.post("/api/whatsapp/campaigns", json={"name": "x", "template": "nao_existe"}, headers=staff)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "O modelo de mensagem nao_existe não está cadastrado."
    spec = {"name": "x", "template": "vacinacao_campanha", "variables": ["30/11"], "days": [9]}
    assert client.post("/api/whatsapp/campaigns", json=spec, headers=staff).json()["code"] == "campaign_invalid"
    missing = {"name": "x", "template": "vacinacao_campanha"}
    assert client.post("/api/whatsapp/campaigns", json=missing, headers=staff).json()["code"] == "template_variables"
    assert client.get("/api/whatsapp/campaigns/999", headers=staff).status_code == 404


def test_campaigns_need_a_staff_member_with_the_whatsapp_permission(client: TestClient, services: Services) -> None:
    assert client.get("/api/whatsapp/campaigns").status_code == 401
    token = staff_token(services, scopes=frozenset({"kb:read"}), role="content_editor")
    response = client.get("/api/whatsapp/campaigns", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


def test_a_segment_naming_a_phone_in_clear_reaches_its_contact_and_is_stored_pseudonymised(
    client: TestClient, wa: WhatsAppService, staff: dict[str, str]
) -> None:
    body = message_body(wamid="wamid.phone", text="Olá", citizen=9, at=time.time() - 3 * 86400)
    body["entry"][0]["changes"][0]["value"]["contacts"][0].pop("user_id")
    raw = encode(body)
    assert client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw)).status_code == 200
    wa.drain()
    contact = wa.contacts.find(NUMBER, "5561900000009")
    assert contact is not None
    client.post(
        "/api/whatsapp/templates",
        json={"name": "aviso", "category": "UTILITY", "body": "Aviso: {{1}}.", "variables": ["texto"], "buttons": []},
        headers=staff,
    )

    report = create(client, staff, template="aviso", variables=["ok"], citizen_refs=["whatsapp:5561900000009"])

    assert report["recipients"] == 1
    with wa.sessions() as session:
        segment = session.scalars(select(CampaignRow.segment)).one()
    assert segment["citizen_refs"] == [contact.citizen_ref]
    assert "5561900000009" not in repr(segment)

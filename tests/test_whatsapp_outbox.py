"""Sending: retries against a real HTTP fake of the Graph API, pacing, ordering, the 24-hour window and templates."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from backing_services import RedisKeys
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner
from whatsapp_support import NUMBER, encode, message_body, signed_headers, whatsapp_settings

from assistant.testing import ScriptedChatModel
from atende import cli
from atende.app import create_app
from atende.services import Services
from channels.whatsapp.backoff import backoff_s
from channels.whatsapp.models import ContactRow, OutboxRow
from channels.whatsapp.service import SendRefused, WhatsAppService, build_limiter
from channels.whatsapp.templates import TemplateSpec
from core.models import utcnow
from core.ratelimit import InMemoryRateLimiter, RateDecision
from core.settings import Settings
from rag.types import Document

REF = "whatsapp:BR.00000000000000000001"
PHONE = "5561900000001"


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


def build(test_settings: Settings, graph_url: str, docs: list[Document], **overrides: Any) -> Services:
    return make_services(whatsapp_settings(test_settings, graph_url, **overrides), ScriptedChatModel([]), docs)


@pytest.fixture
def services(test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]) -> Iterator[Services]:
    svc = build(test_settings, graph.url, knowledge_documents, whatsapp_max_attempts=4)
    yield svc
    svc.close()


@pytest.fixture
def wa(services: Services) -> WhatsAppService:
    assert services.whatsapp is not None
    return services.whatsapp


def citizen_writes(wa: WhatsAppService, text: str = "Olá", *, hours_ago: float = 0, citizen: int = 1) -> None:
    """The citizen's message as the webhook stores it, processed (so the window opens and a reply is queued)."""
    body = message_body(
        wamid=f"wamid.{uuid.uuid4().hex}", text=text, at=time.time() - hours_ago * 3600, citizen=citizen
    )
    raw = encode(body)
    with TestClient(create_app(services=_services_of(wa))) as client:
        assert client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw)).status_code == 200
    wa.processor().run_until_idle()


_SERVICES: dict[int, Services] = {}


def _services_of(wa: WhatsAppService) -> Services:
    return _SERVICES[id(wa)]


@pytest.fixture(autouse=True)
def _remember(services: Services) -> Iterator[None]:
    assert services.whatsapp is not None
    _SERVICES[id(services.whatsapp)] = services
    yield
    _SERVICES.pop(id(services.whatsapp), None)


def outbox_row(wa: WhatsAppService, item_id: int) -> dict[str, Any]:
    return wa.outbox.find_by_id(item_id)


def register_template(wa: WhatsAppService, **overrides: Any) -> None:
    spec: dict[str, Any] = {
        "name": "aviso_iptu",
        "language": "pt_BR",
        "category": "UTILITY",
        "body": "Olá, {{1}}! O boleto do IPTU vence em {{2}}.",
        "variables": ["nome", "data"],
        "buttons": ["Parar avisos"],
    }
    spec.update(overrides)
    wa.templates.register(TemplateSpec(**spec))


# Retries


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    assert backoff_s(1, 2.0, 600, rng=lambda: 0.0) == 1.0
    assert backoff_s(1, 2.0, 600, rng=lambda: 0.999) == pytest.approx(2.0, abs=0.01)
    assert backoff_s(4, 2.0, 600, rng=lambda: 0.0) == 8.0
    assert backoff_s(20, 2.0, 600, rng=lambda: 0.0) == 300.0
    assert backoff_s(3, 0.0, 600) == 0.0


def test_a_429_is_retried_after_the_time_meta_asks_for(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    graph.fail_next(429, code=130429, retry_after="0")
    citizen_writes(wa)
    wa.sender().run_until_idle()
    assert [r["status"] for r in graph.refused] == [429]
    assert len(graph.sends) == 1
    [row] = [wa.outbox.find_by_id(1)]
    assert (row["status"], row["attempts"]) == ("accepted", 1)


def test_a_long_retry_after_is_respected(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    graph.fail_next(429, retry_after="120")
    citizen_writes(wa)
    before = utcnow()
    wa.sender().run_until_idle()
    row = outbox_row(wa, 1)
    assert row["status"] == "queued"
    assert row["error_code"] == "429"
    assert row["next_attempt_at"] >= (before + timedelta(seconds=119)).isoformat()
    assert graph.sends == []


def test_server_errors_are_retried_until_the_message_goes(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    graph.fail_next(500, times=2)
    graph.fail_next(503)
    citizen_writes(wa)
    wa.sender().run_until_idle()
    assert [r["status"] for r in graph.refused] == [500, 500, 503]
    assert len(graph.sends) == 1
    assert outbox_row(wa, 1)["attempts"] == 3


def test_a_message_that_keeps_failing_is_given_up_after_the_last_attempt(
    wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    graph.fail_next(502, times=10)
    citizen_writes(wa)
    wa.sender().run_until_idle()
    assert len(graph.refused) == 4  # whatsapp_max_attempts
    [failure] = wa.outbox.failures()
    assert (failure["error_code"], failure["attempts"]) == ("502", 4)


def test_a_permanent_error_is_not_retried(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    graph.fail_next(400, code=131026)  # message undeliverable
    citizen_writes(wa)
    wa.sender().run_until_idle()
    assert len(graph.refused) == 1
    assert wa.outbox.failures()[0]["error_code"] == "131026"


def test_an_unreachable_graph_api_is_retried_later(
    test_settings: Settings, knowledge_documents: list[Document]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    svc = build(test_settings, closed, knowledge_documents)
    try:
        assert svc.whatsapp is not None
        _SERVICES[id(svc.whatsapp)] = svc
        citizen_writes(svc.whatsapp)
        svc.whatsapp.sender().run_once()
        row = svc.whatsapp.outbox.find_by_id(1)
        assert (row["status"], row["error_code"], row["attempts"]) == ("queued", "network", 1)
    finally:
        svc.close()


def test_a_message_left_in_flight_by_a_dead_sender_is_sent_again(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    citizen_writes(wa)
    [lost] = wa.outbox.claim_due("dead-sender", limit=1, lease_s=-1)
    assert lost.id == 1
    wa.sender().run_until_idle()
    assert len(graph.sends) == 1
    assert outbox_row(wa, 1)["status"] == "accepted"


# Order and pacing


def test_the_parts_of_a_long_message_arrive_in_order_even_after_a_retry(
    wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    citizen_writes(wa)
    wa.sender().run_until_idle()
    graph.fail_next(429, retry_after="0")
    text = " ".join(f"Parte {i}: " + "texto do atendimento. " * 60 for i in range(6))
    ids = wa.send_text(PHONE, text, actor="user:7")
    assert len(ids) >= 2
    wa.sender(concurrency=8).run_until_idle()
    bodies = [b["text"]["body"] for b in graph.sent_to(PHONE)][1:]
    assert "".join(bodies).replace(" ", "") == text.replace(" ", "")


def test_a_citizen_is_not_sent_more_than_the_pacing_allows(
    test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]
) -> None:
    svc = build(test_settings, graph.url, knowledge_documents, whatsapp_recipient_per_min=2)
    try:
        wa = svc.whatsapp
        assert wa is not None
        _SERVICES[id(wa)] = svc
        citizen_writes(wa)
        wa.send_text(PHONE, "Segunda mensagem", actor="user:7")
        wa.send_text(PHONE, "Terceira mensagem", actor="user:7")
        wa.sender().run_until_idle()
        assert len(graph.sends) == 2
        third = wa.outbox.find_by_id(3)
        assert (third["status"], third["attempts"]) == ("queued", 0)
        assert third["next_attempt_at"] > utcnow().isoformat()
    finally:
        svc.close()


class RecordingLimiter:
    """Refuses the first hit on the business number's key, then allows everything; records every hit."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, int, float]] = []

    def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        self.hits.append((key, limit, window_s))
        first_on_number = key.startswith("wa:number:") and sum(1 for h in self.hits if h[0] == key) == 1
        return RateDecision(not first_on_number, 0, 0.0 if not first_on_number else 0.001)

    def peek(self, key: str, *, limit: int) -> int:
        return limit

    def refund(self, key: str) -> None:
        raise AssertionError("the sender never refunds a hit")


def test_every_send_waits_for_the_global_rate_of_its_business_number(
    services: Services, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    limiter = RecordingLimiter()
    wa._limiter = limiter
    citizen_writes(wa)
    wa.sender().run_until_idle()
    assert len(graph.sends) == 1
    number_hits = [h for h in limiter.hits if h[0] == f"wa:number:{NUMBER}"]
    assert number_hits == [(f"wa:number:{NUMBER}", 1000, 1.0)] * 2  # refused once, then allowed
    assert next(h for h in limiter.hits if h[0].startswith("wa:recipient:"))[1:] == (1000, 60.0)


@pytest.mark.integration
def test_the_limiter_is_shared_through_redis_under_the_deployments_key_prefix(
    test_settings: Settings, redis_keys: RedisKeys
) -> None:
    prefix = redis_keys.prefix
    limiter = build_limiter(
        test_settings.model_copy(update={"redis_url": redis_keys.url, "handoff_redis_prefix": prefix})
    )
    key = f"test:{uuid.uuid4().hex}"
    decisions = [limiter.hit(key, limit=2, window_s=60).allowed for _ in range(3)]
    assert decisions == [True, True, False]
    assert redis_keys.client.exists(f"{prefix}wa:rl:{key}") == 1  # two deployments on one Redis keep separate limits
    assert isinstance(build_limiter(test_settings), InMemoryRateLimiter)


# The 24-hour window and templates


def test_free_text_outside_the_window_is_refused(wa: WhatsAppService) -> None:
    citizen_writes(wa, hours_ago=30)
    with pytest.raises(SendRefused) as refused:
        wa.send_text(PHONE, "Olá de novo", actor="user:7")
    assert refused.value.key == "whatsapp.outside_window"


def test_a_template_goes_outside_the_window_to_a_citizen_who_opted_in(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    citizen_writes(wa, hours_ago=72)
    wa.sender().run_until_idle()  # the late reply to that old message is not sent
    register_template(wa)
    wa.consent.record(REF, "whatsapp", "notificacoes", "opt_in", "web:form")
    wa.send_template(PHONE, "aviso_iptu", "pt_BR", ["Ana", "10/12"], actor="user:7")
    wa.sender().run_until_idle()
    [send] = graph.sends
    assert send["json"]["type"] == "template"
    assert send["json"]["template"] == {
        "name": "aviso_iptu",
        "language": {"code": "pt_BR"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "10/12"}]},
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": "0",
                "parameters": [{"type": "payload", "payload": "atende:tpl:aviso_iptu:0"}],
            },
        ],
    }
    assert send["json"]["biz_opaque_callback_data"].startswith("atende:")


def test_a_template_is_refused_without_an_opt_in(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    citizen_writes(wa)
    register_template(wa)
    with pytest.raises(SendRefused) as refused:
        wa.send_template(PHONE, "aviso_iptu", "pt_BR", ["Ana", "10/12"], actor="user:7")
    assert refused.value.key == "whatsapp.no_opt_in"


@pytest.mark.parametrize(
    ("overrides", "values", "key"),
    [
        ({"status": "PENDING"}, ["Ana", "10/12"], "whatsapp.template_not_approved"),
        ({}, ["Ana"], "whatsapp.template_variables"),
        ({"name": "outro"}, ["Ana", "10/12"], "whatsapp.template_unknown"),
    ],
)
def test_only_approved_templates_with_every_variable_are_sent(
    wa: WhatsAppService, overrides: dict[str, Any], values: list[str], key: str
) -> None:
    register_template(wa, **overrides)
    wa.consent.record(REF, "whatsapp", "notificacoes", "opt_in", "web:form")
    with pytest.raises(SendRefused) as refused:
        wa.send_template(PHONE, "aviso_iptu", "pt_BR", values, actor="user:7")
    assert refused.value.key == key


def test_an_opt_out_after_queueing_stops_the_template(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    citizen_writes(wa, hours_ago=48)
    register_template(wa)
    wa.consent.record(REF, "whatsapp", "notificacoes", "opt_in", "web:form")
    outbox_id = wa.send_template(PHONE, "aviso_iptu", "pt_BR", ["Ana", "10/12"], actor="user:7")
    wa.consent.record(REF, "whatsapp", "*", "opt_out", "whatsapp:keyword SAIR")
    wa.sender().run_until_idle()
    assert graph.sends == []
    assert outbox_row(wa, outbox_id)["error_code"] == "no_opt_in"


def test_a_reply_queued_inside_the_window_fails_if_sent_after_it(wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    citizen_writes(wa)
    with wa.sessions() as session:
        session.execute(update(ContactRow).values(last_inbound_at=utcnow() - timedelta(hours=25)))
        session.commit()
    wa.sender().run_until_idle()
    assert graph.sends == []
    with wa.sessions() as session:
        assert session.get(OutboxRow, 1).error_code == "outside_window"  # type: ignore[union-attr]


def test_send_template_on_the_command_line(
    services: Services, wa: WhatsAppService, graph: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_template(wa)
    wa.consent.record(REF, "whatsapp", "notificacoes", "opt_in", "web:form")
    citizen_writes(wa)
    monkeypatch.setattr(cli, "_build_services", lambda settings: services)
    monkeypatch.setattr(services, "close", lambda: None)
    monkeypatch.setattr(cli, "_settings", lambda: services.settings)
    args = ["wa", "send-template", "--to", PHONE, "--template", "aviso_iptu", "--var", "Ana", "--var", "10/12", "--now"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["status"] == "accepted"
    assert graph.sent_to(PHONE)[-1]["template"]["name"] == "aviso_iptu"

    refused = CliRunner().invoke(cli.app, [*args[:-5], "--var", "Ana"])
    assert refused.exit_code == 2
    assert "espera 2 variáveis" in refused.output

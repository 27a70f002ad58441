"""A WhatsApp citizen gets the same handoff as the web chat: the console queue with the number's team, the
agent's replies and the closing survey over the outbox (exactly once, inside the 24-hour window), and the
citizen's messages to the agent instead of the bot."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from backing_services import postgres_schema, redis_keyspace
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from whatsapp_support import NUMBER, deliver, media_id, message_body, whatsapp_settings

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from channels.whatsapp.models import ContactRow, MediaRow
from channels.whatsapp.service import WhatsAppService
from conversation.models import InboxRow
from core.accounts.service import Accounts
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly
from core.accounts.types import StaffUser
from core.i18n import t
from core.models import Conversation, Turn, utcnow
from core.settings import Settings, WhatsAppNumber
from handoff.records import conversation_topic
from handoff.service import HandoffService
from rag.types import Document

PHONE = "5561900000001"
TEAM = "geral"
UNANSWERABLE = "Qual é a cotação do bitcoin em marte hoje?"


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture(params=["sqlite", pytest.param("postgresql+redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """SQLite with in-process live state, or PostgreSQL with the live state (queues, pushes) in Redis."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_schema() as url, redis_keyspace() as redis_keys:
        yield {"database_url": url, "redis_url": redis_keys.url, "handoff_redis_prefix": redis_keys.prefix}


@pytest.fixture
def settings(test_settings: Settings, graph: FakeGraphAPI, backend: dict[str, Any]) -> Settings:
    return whatsapp_settings(
        test_settings,
        graph.url,
        whatsapp_numbers=[WhatsAppNumber(phone_number_id=NUMBER, team=TEAM)],
        whatsapp_max_attempts=3,
        **backend,
    )


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel([])


@pytest.fixture
def services(settings: Settings, model: ScriptedChatModel, knowledge_documents: list[Document]) -> Iterator[Services]:
    svc = make_services(settings, model, knowledge_documents)
    yield svc
    svc.close()


@pytest.fixture
def wa(services: Services) -> WhatsAppService:
    assert services.whatsapp is not None
    return services.whatsapp


@pytest.fixture
def handoff(services: Services) -> HandoffService:
    assert services.handoff is not None
    return services.handoff


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def accounts(services: Services, client: TestClient) -> Accounts:
    return rewire(services, clock=ManualClock())


@pytest.fixture
def agent(accounts: Accounts) -> StaffUser:
    """An agent of the setor that serves the number's queue (the console shows staff their setor's queues)."""
    from core.accounts.types import SYSTEM

    setor = accounts.directory.create_team(TEAM.capitalize(), actor="system", origin=SYSTEM)
    return create_user(accounts, "ana.agente", "agent", team=setor.id)


def as_agent(client: TestClient, accounts: Accounts, agent: StaffUser) -> dict[str, str]:
    client.cookies.clear()
    return {"X-CSRF-Token": sign_in_directly(client, accounts, agent)}


def conversation_of(wa: WhatsAppService) -> str:
    with wa.sessions() as session:
        cid = session.scalars(select(ContactRow.conversation_id).where(ContactRow.phone_number_id == NUMBER)).one()
        assert cid is not None
        return cid


def turns(wa: WhatsAppService) -> int:
    with wa.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Turn)) or 0)


def texts_sent(graph: FakeGraphAPI) -> list[str]:
    return [
        body["text"]["body"] if body["type"] == "text" else body["interactive"]["body"]["text"]
        for body in graph.sent_to(PHONE)
    ]


def ask_for_a_person(client: TestClient, wa: WhatsAppService) -> str:
    deliver(client, message_body(wamid="wamid.H1", text="quero falar com um atendente"))
    wa.drain()
    return conversation_of(wa)


def served_by(client: TestClient, wa: WhatsAppService, accounts: Accounts, agent: StaffUser) -> tuple[str, Any]:
    """A WhatsApp conversation that asked for a person and that `agent` took from the queue."""
    cid = ask_for_a_person(client, wa)
    headers = as_agent(client, accounts, agent)
    assert client.post(f"/api/console/conversations/{cid}/claim", headers=headers).status_code == 200
    return cid, headers


def test_a_whatsapp_citizen_asking_for_a_person_appears_in_the_console_queue_with_the_numbers_team(
    client: TestClient, wa: WhatsAppService, accounts: Accounts, agent: StaffUser, graph: FakeGraphAPI
) -> None:
    cid = ask_for_a_person(client, wa)

    queue = client.get("/api/console/queue", headers=as_agent(client, accounts, agent)).json()

    [waiting] = queue["waiting"]
    assert (waiting["conversation_id"], waiting["team"], waiting["position"]) == (cid, TEAM, 1)
    assert wa.conversation_state(cid) == "waiting"
    [told] = texts_sent(graph)  # the same handoff answer as the web chat, with the place in the queue
    assert "1" in told


def test_two_answers_the_bot_could_not_give_queue_the_whatsapp_citizen_and_say_their_place(
    client: TestClient, wa: WhatsAppService, handoff: HandoffService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.A1", text=UNANSWERABLE))
    wa.drain()
    deliver(client, message_body(wamid="wamid.A2", text="E a cotação do bitcoin em júpiter amanhã?"))
    wa.drain()

    [(view, position)] = handoff.waiting()
    assert (view.conversation_id, view.team, view.reason, position) == (conversation_of(wa), TEAM, "abstained_twice", 1)
    first, second = graph.sent_to(PHONE)
    assert first["type"] == "interactive"  # the first abstention offers a person
    assert second["type"] == "text"  # the second hands off: no button, the place in the queue instead
    assert second["text"]["body"].endswith(t("handoff.queued", position=1))


def test_an_agents_reply_arrives_at_the_fake_graph_api_exactly_once(
    client: TestClient, wa: WhatsAppService, accounts: Accounts, agent: StaffUser, graph: FakeGraphAPI
) -> None:
    cid, headers = served_by(client, wa, accounts, agent)
    before = len(graph.sends)
    graph.fail_next(503)  # the first attempt fails; the outbox retries

    url = f"/api/console/conversations/{cid}/messages"
    sent = client.post(url, json={"text": "Olá, sou a **Ana**."}, headers=headers)
    wa.drain()
    wa.drain()
    deliver(client, message_body(wamid="wamid.H1", text="quero falar com um atendente"))  # Meta redelivers
    wa.drain()

    assert sent.status_code == 200
    replies = [s["json"] for s in graph.sends[before:]]
    assert replies == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": PHONE,
            "type": "text",
            "text": {"body": "Olá, sou a *Ana*.", "preview_url": False},
            "biz_opaque_callback_data": replies[0]["biz_opaque_callback_data"],
        }
    ]
    assert len(graph.refused) == 1


def test_an_agents_reply_outside_the_24_hour_window_is_refused_and_the_agent_is_told_why(
    client: TestClient, wa: WhatsAppService, accounts: Accounts, agent: StaffUser, graph: FakeGraphAPI
) -> None:
    cid, headers = served_by(client, wa, accounts, agent)
    before = len(graph.sends)
    with wa.sessions.begin() as session:
        session.execute(update(ContactRow).values(last_inbound_at=utcnow() - timedelta(hours=25)))

    refused = client.post(f"/api/console/conversations/{cid}/messages", json={"text": "Ainda aí?"}, headers=headers)
    wa.drain()

    assert refused.status_code == 409
    assert refused.json() == {"code": "outside_window", "detail": t("handoff.error.outside_window")}
    history = client.get(f"/api/console/conversations/{cid}", headers=headers).json()["messages"]
    assert "agent" not in [m["role"] for m in history]  # nothing stored that the citizen never got
    assert len(graph.sends) == before


def test_a_citizen_message_while_with_an_agent_reaches_the_agent_and_not_the_bot(
    client: TestClient,
    wa: WhatsAppService,
    handoff: HandoffService,
    accounts: Accounts,
    agent: StaffUser,
    graph: FakeGraphAPI,
) -> None:
    cid, headers = served_by(client, wa, accounts, agent)
    turns_before, sends_before = turns(wa), len(graph.sends)
    console = handoff.live.subscribe(conversation_topic(cid))
    try:
        deliver(client, message_body(wamid="wamid.C1", text="Meu boleto venceu ontem, e agora?"))
        wa.drain()
        pushed = console.next(5.0)
    finally:
        console.close()

    assert pushed is not None
    assert pushed["message"]["role"] == "user"
    assert "text" not in pushed["message"]  # the console reads it through the checked, masked endpoint
    history = client.get(f"/api/console/conversations/{cid}", headers=headers).json()["messages"]
    assert history[-1]["text"] == "Meu boleto venceu ontem, e agora?"
    assert turns(wa) == turns_before  # the bot did not answer
    assert len(graph.sends) == sends_before  # nor did anyone in its place
    assert wa.conversation_state(cid) == "with_agent"


def test_closing_sends_the_survey_via_whatsapp_and_the_score_chosen_is_recorded(
    client: TestClient,
    wa: WhatsAppService,
    handoff: HandoffService,
    accounts: Accounts,
    agent: StaffUser,
    graph: FakeGraphAPI,
) -> None:
    cid, headers = served_by(client, wa, accounts, agent)
    closed = client.post(f"/api/console/conversations/{cid}/close", json={"reason": "resolved"}, headers=headers)
    wa.drain()
    wa.drain()

    assert closed.status_code == 200
    handoff_id = closed.json()["id"]
    survey = graph.sent_to(PHONE)[-1]
    assert survey["type"] == "interactive"
    assert survey["interactive"]["type"] == "list"
    number = closed.json()["protocol_number"]
    assert survey["interactive"]["body"]["text"] == t("whatsapp.survey.text", reference=number)
    assert re.fullmatch(r"\d{4}-\d{6}", number)  # the service's protocol, not the handoff's id
    rows = survey["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"atende:survey:{handoff_id}:{n}" for n in (5, 4, 3, 2, 1)]
    assert len([s for s in graph.sends if s["json"]["type"] == "interactive"]) == 1  # once

    chosen = message_body("interactive_list_reply", wamid="wamid.R5")
    chosen["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["list_reply"] = rows[0]
    deliver(client, chosen)
    wa.drain()

    rated = handoff.current(cid)
    assert rated is not None
    assert rated.survey_score == 5
    assert texts_sent(graph)[-1] == t("handoff.survey_thanks")
    with wa.sessions() as session:  # the answer belongs to the closed conversation: no new one for it
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1


def test_a_number_served_by_people_puts_the_conversation_in_its_teams_console_queue(
    test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]
) -> None:
    settings = whatsapp_settings(
        test_settings,
        graph.url,
        whatsapp_numbers=[WhatsAppNumber(phone_number_id=NUMBER, team="ouvidoria", flow="agents")],
    )
    svc = make_services(settings, ScriptedChatModel([]), knowledge_documents)
    try:
        with TestClient(create_app(services=svc)) as client:
            deliver(client, message_body(wamid="wamid.Q1", text="Quero registrar uma reclamação"))
            assert svc.whatsapp is not None
            assert svc.handoff is not None
            svc.whatsapp.drain()
            [(view, _)] = svc.handoff.waiting()
            assert (view.team, view.source) == ("ouvidoria", "whatsapp_number")
            assert svc.handoff.claim(view.conversation_id, "user:1").agent == "user:1"
    finally:
        svc.close()


def test_a_file_that_cannot_be_fetched_is_given_up_after_the_maximum_attempts(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, caplog: pytest.LogCaptureFixture
) -> None:
    graph.add_media(media_id("image"), b"\xff\xd8\xff\xe0jpeg-bytes", "image/jpeg")
    graph.fail_media_next(503, times=10)  # the Graph API keeps failing

    deliver(client, message_body("image", wamid="wamid.F1"))
    with caplog.at_level(logging.WARNING, logger="channels.whatsapp.processor"):
        wa.drain()

    assert graph.media_calls == [media_id("image")] * 3  # ATENDE_WHATSAPP_MAX_ATTEMPTS
    assert texts_sent(graph) == [t("whatsapp.file_failed")]
    with wa.sessions() as session:
        assert session.scalars(select(MediaRow.state)).all() == ["failed"]
        row = session.scalars(select(InboxRow)).one()
        assert (row.state, row.attempts) == ("done", 3)
    assert any("could not be fetched after 3 attempts, giving up" in r.getMessage() for r in caplog.records)

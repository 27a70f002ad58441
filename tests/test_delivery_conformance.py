"""One suite for the `handoff.delivery.Delivery` contract, run against every implementation.

The contract, from the protocol: a message reaches the citizen only if the caller's transaction commits; a key is
carried once, however often it is handed over; a refusal is raised before anything is written; the team is read
in the caller's transaction. WhatsApp runs in full, down to the Graph API requests (answered by an
httpx.MockTransport: no network); the test double `channels.testing.ScriptedDelivery` must behave the same.
The web chat's `LiveDelivery` carries nothing itself (the chat reads the conversation), so only the part of the
contract that binds it runs against it.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from whatsapp_support import whatsapp_settings

from assistant.testing import ScriptedChatModel
from atende.services import build_services
from channels.testing import KeyReused, ScriptedDelivery, UnexpectedDelivery
from channels.whatsapp.delivery import WhatsAppDelivery
from channels.whatsapp.graph import HttpxGraphClient
from channels.whatsapp.models import OutboxRow
from channels.whatsapp.payloads import Sender
from channels.whatsapp.service import WhatsAppService
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.models import utcnow
from core.settings import Settings, WhatsAppNumber
from handoff.delivery import Delivery, DeliveryRefused, LiveDelivery, Outgoing, Survey

TEAM = "tributos"
NUMBER = "207345918866301"
GRAPH_URL = "https://graph.facebook.test/v21.0"


@dataclass
class Harness:
    """One Delivery and what the suite needs around it."""

    delivery: Delivery
    sessions: sessionmaker[Session]
    conversation: Callable[[], str]  # a conversation the channel may carry messages to now
    received: Callable[[str], list[str]]  # the texts that reached that conversation's citizen so far
    team: str | None  # the team the channel names for its conversations
    reused_key: type[Exception] | None = None  # what fails the transaction that hands a key over again
    refused: Callable[[], str] | None = None  # a conversation the channel refuses, if it ever refuses
    problems: Callable[[], list[str]] = list  # anything unexpected the channel met (checked after each test)


@dataclass
class MockGraphAPI:
    """The Graph API's send endpoint behind an httpx.MockTransport; any other request is kept as unexpected."""

    sends: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(httpx.URL(GRAPH_URL).path)
        if request.method == "POST" and path == f"/{NUMBER}/messages":
            body = json.loads(request.content)
            wamid = f"wamid.mock{next(self._ids)}"
            self.sends.append(body)
            return httpx.Response(200, json={"messaging_product": "whatsapp", "messages": [{"id": wamid}]})
        self.unexpected.append(f"{request.method} {request.url}")
        return httpx.Response(404, json={"error": {"code": 100, "message": "not mocked"}})

    def texts_to(self, phone: str) -> list[str]:
        bodies = [s for s in self.sends if s.get("to") == phone]
        return [s["text"]["body"] if s["type"] == "text" else s["interactive"]["body"]["text"] for s in bodies]


def scripted_harness(tmp_path: Path) -> Iterator[Harness]:
    engine = make_engine(f"sqlite:///{(tmp_path / 'fake.db').as_posix()}")
    fake = ScriptedDelivery()

    def conversation() -> str:
        cid = uuid.uuid4().hex
        fake.expect(cid, team=TEAM)
        return cid

    def refused() -> str:
        cid = uuid.uuid4().hex
        fake.refuse(cid)
        return cid

    yield Harness(
        fake,
        make_session_factory(engine),
        conversation,
        fake.texts,
        TEAM,
        KeyReused,
        refused,
        lambda: list(fake.unexpected),
    )
    engine.dispose()


def whatsapp_harness(tmp_path: Path, test_settings: Settings) -> Iterator[Harness]:
    settings = whatsapp_settings(
        test_settings, GRAPH_URL, whatsapp_numbers=[WhatsAppNumber(phone_number_id=NUMBER, team=TEAM)]
    )
    upgrade(settings.resolved_database_url)
    services = build_services(settings, model=ScriptedChatModel([]))
    assert services.lgpd is not None
    graph = MockGraphAPI()
    client = HttpxGraphClient(GRAPH_URL, "test-graph-token", transport=httpx.MockTransport(graph.handle))
    wa = WhatsAppService(
        settings,
        services.engine,
        services.store,
        services.conversations,
        services.lgpd.consent,
        services.audit,
        graph=client,
        indexer=services.lgpd.cipher,
    )
    citizens = itertools.count(1)
    phones: dict[str, str] = {}

    def citizen_wrote(hours_ago: float) -> str:
        n = next(citizens)
        phone = f"55619{n:08d}"
        contact = wa.contacts.touch(
            NUMBER, Sender(f"BR.{n:020d}", phone, "Maria"), utcnow() - timedelta(hours=hours_ago)
        )
        assert contact.conversation_id is not None
        phones[contact.conversation_id] = phone
        return contact.conversation_id

    def received(conversation_id: str) -> list[str]:
        wa.sender().run_until_idle()
        return graph.texts_to(phones[conversation_id])

    yield Harness(
        WhatsAppDelivery(wa),
        wa.sessions,
        lambda: citizen_wrote(0),
        received,
        TEAM,
        IntegrityError,  # the outbox's unique key (channels/whatsapp/outbox.py)
        lambda: citizen_wrote(25),  # outside Meta's 24-hour customer-service window
        lambda: list(graph.unexpected),
    )
    wa.close()
    services.close()


def live_harness(tmp_path: Path) -> Iterator[Harness]:
    url = f"sqlite:///{(tmp_path / 'live.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    yield Harness(LiveDelivery(), make_session_factory(engine), lambda: uuid.uuid4().hex, lambda _: [], None)
    engine.dispose()


CARRIERS = ["scripted", "whatsapp"]


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path, test_settings: Settings) -> Iterator[Harness]:
    builders: dict[str, Callable[[], Iterator[Harness]]] = {
        "scripted": lambda: scripted_harness(tmp_path),
        "whatsapp": lambda: whatsapp_harness(tmp_path, test_settings),
        "live": lambda: live_harness(tmp_path),
    }
    built = builders[request.param]()
    subject = next(built)
    yield subject
    assert subject.problems() == []
    for _ in built:  # runs the harness's clean-up
        pass


def deliver(harness: Harness, conversation_id: str, *messages: Outgoing) -> None:
    with harness.sessions.begin() as session:
        for message in messages:
            harness.delivery.deliver(session, conversation_id, message)


@pytest.mark.parametrize("harness", CARRIERS, indirect=True)
def test_a_message_reaches_the_citizen_once_its_transaction_commits(harness: Harness) -> None:
    cid = harness.conversation()

    deliver(harness, cid, Outgoing("agent:1", "Olá! Sou a Ana, da Secretaria de Fazenda."))

    assert harness.received(cid) == ["Olá! Sou a Ana, da Secretaria de Fazenda."]


@pytest.mark.parametrize("harness", CARRIERS, indirect=True)
def test_messages_reach_the_citizen_in_the_order_they_were_handed_over(harness: Harness) -> None:
    cid = harness.conversation()

    deliver(harness, cid, Outgoing("agent:1", "Primeira mensagem."), Outgoing("agent:2", "Segunda mensagem."))

    assert harness.received(cid) == ["Primeira mensagem.", "Segunda mensagem."]


@pytest.mark.parametrize("harness", CARRIERS, indirect=True)
def test_a_message_whose_transaction_rolls_back_never_reaches_the_citizen(harness: Harness) -> None:
    cid = harness.conversation()

    with harness.sessions() as session:
        transaction = session.begin()
        harness.delivery.deliver(session, cid, Outgoing("agent:1", "Esta mensagem não foi gravada."))
        transaction.rollback()
    deliver(harness, cid, Outgoing("agent:2", "Esta foi."))

    assert harness.received(cid) == ["Esta foi."]


@pytest.mark.parametrize("harness", CARRIERS, indirect=True)
def test_a_key_handed_over_again_fails_that_transaction_and_reaches_the_citizen_once(harness: Harness) -> None:
    assert harness.reused_key is not None
    cid = harness.conversation()

    deliver(harness, cid, Outgoing("agent:1", "Seu protocolo é 2026-000123."))
    with pytest.raises(harness.reused_key):
        deliver(
            harness, cid, Outgoing("agent:2", "Outra mensagem."), Outgoing("agent:1", "Seu protocolo é 2026-000123.")
        )

    assert harness.received(cid) == ["Seu protocolo é 2026-000123."]  # nor the other message of that transaction


@pytest.mark.parametrize("harness", CARRIERS, indirect=True)
def test_the_closing_survey_reaches_the_citizen_with_the_protocol_number(harness: Harness) -> None:
    cid = harness.conversation()

    closing = "Atendimento encerrado. Número de protocolo: 2026-000123."
    deliver(harness, cid, Outgoing("close:7", closing, Survey(7, "2026-000123")))

    [survey] = harness.received(cid)
    assert "2026-000123" in survey


@pytest.mark.parametrize("harness", CARRIERS, indirect=True)
def test_a_refusal_is_raised_before_anything_is_written(harness: Harness) -> None:
    assert harness.refused is not None
    cid = harness.refused()

    with harness.sessions.begin() as session, pytest.raises(DeliveryRefused) as refused:
        harness.delivery.deliver(session, cid, Outgoing("agent:1", "Fora da janela."))
        # The caller's transaction goes on (it may store the refusal) and commits with nothing to carry.

    assert refused.value.code
    assert refused.value.key.startswith("handoff.error.")
    assert harness.received(cid) == []


@pytest.mark.parametrize("harness", ["whatsapp"], indirect=True)
def test_a_whatsapp_refusal_leaves_no_outbox_row(harness: Harness) -> None:
    assert harness.refused is not None
    cid = harness.refused()

    with harness.sessions.begin() as session:
        with pytest.raises(DeliveryRefused):
            harness.delivery.deliver(session, cid, Outgoing("agent:1", "Fora da janela."))
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 0


@pytest.mark.parametrize("harness", [*CARRIERS, "live"], indirect=True)
def test_the_team_is_the_channels_own_read_in_the_callers_transaction(harness: Harness) -> None:
    cid = harness.conversation()

    with harness.sessions.begin() as session:
        assert harness.delivery.team(session, cid) == harness.team


@pytest.mark.parametrize("harness", [*CARRIERS, "live"], indirect=True)
def test_every_implementation_is_a_delivery(harness: Harness) -> None:
    assert isinstance(harness.delivery, Delivery)


# The test double's own promise: anything the test did not script fails loudly.


def test_the_scripted_delivery_fails_loudly_on_a_conversation_it_was_never_told_about(tmp_path: Path) -> None:
    fake = ScriptedDelivery().expect("known", team=TEAM)
    sessions = make_session_factory(make_engine(f"sqlite:///{(tmp_path / 'fake.db').as_posix()}"))

    with sessions.begin() as session:
        with pytest.raises(UnexpectedDelivery, match="unknown"):
            fake.deliver(session, "unknown", Outgoing("agent:1", "Olá"))
        with pytest.raises(UnexpectedDelivery, match="unknown"):
            fake.team(session, "unknown")

    # Recorded too, for code that catches every exception on its way.
    assert len(fake.unexpected) == 2
    assert fake.sent == []

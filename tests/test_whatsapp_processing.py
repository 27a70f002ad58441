"""From a stored webhook item to the citizen's reply: every message type, exactly once, and delivery statuses."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from whatsapp_support import (
    NUMBER,
    answer_or_decline,
    deliver,
    media_id,
    message_body,
    staff_token,
    status_body,
    whatsapp_settings,
)

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from channels.whatsapp.models import ContactRow, MediaRow, OutboxRow
from channels.whatsapp.service import WhatsAppService
from conversation.models import InboxRow
from core.i18n import t
from core.models import Conversation, Event, Message, Turn, utcnow
from core.settings import Settings, WhatsAppNumber
from rag.types import Document

QUESTION = "Como emito a segunda via do boleto do IPTU?"
OGG = b"OggS" + bytes(range(200))
PHONE_1 = "5561900000001"
NUMBER_B = "2233445566778"


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture
def model() -> ScriptedChatModel:
    # Most messages never reach the model (menus, media, statuses, opt-outs, the tool dialogue): a test whose
    # messages do scripts each call.
    return ScriptedChatModel([])


@pytest.fixture
def settings(test_settings: Settings, graph: FakeGraphAPI) -> Settings:
    return whatsapp_settings(
        test_settings,
        graph.url,
        whatsapp_menu=["Segunda via do IPTU", "Como tirar o alvará de funcionamento?"],
        whatsapp_numbers=[
            WhatsAppNumber(phone_number_id=NUMBER, team="geral"),
            WhatsAppNumber(phone_number_id=NUMBER_B, team="tributos"),
        ],
    )


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
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as test_client:
        yield test_client


def count(wa: WhatsAppService, model: Any, *where: Any) -> int:
    with wa.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def conversation_of(wa: WhatsAppService, citizen: int = 1, number: str = NUMBER) -> str:
    with wa.sessions() as session:
        contact = session.scalars(
            select(ContactRow).where(
                ContactRow.citizen_ref == f"whatsapp:BR.{citizen:020d}", ContactRow.phone_number_id == number
            )
        ).one()
        assert contact.conversation_id is not None
        return contact.conversation_id


def messages(wa: WhatsAppService, conversation_id: str) -> list[tuple[str, str]]:
    with wa.sessions() as session:
        rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id))
        return [(m.role, m.text) for m in rows]


def events(wa: WhatsAppService, conversation_id: str) -> list[Event]:
    with wa.sessions() as session:
        return list(session.scalars(select(Event).where(Event.conversation_id == conversation_id).order_by(Event.id)))


def sent_bodies(graph: FakeGraphAPI, phone: str = PHONE_1) -> list[dict[str, Any]]:
    return graph.sent_to(phone)


# Text and the assistant


def test_a_text_gets_the_same_grounded_answer_as_the_web_chat_with_short_links(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, model: ScriptedChatModel
) -> None:
    model.add(answer_or_decline, answer_or_decline)  # the WhatsApp answer, then the web chat's
    deliver(client, message_body(wamid="wamid.T1", text=QUESTION))
    wa.drain()

    web_id = client.post("/api/conversations").json()["id"]
    web = client.post(f"/api/conversations/{web_id}/messages", json={"text": QUESTION}).json()
    assert web["decision"] == "answered"

    conversation_id = conversation_of(wa)
    assert messages(wa, conversation_id) == [("user", QUESTION), ("assistant", web["answer"])]
    [body] = sent_bodies(graph)
    assert body["messaging_product"] == "whatsapp"
    assert body["type"] == "text"
    assert body["text"]["body"].startswith(web["answer"])
    doc = web["citations"][0]["doc_id"]
    assert f"https://atende.example.gov.br/kb/{doc}" in body["text"]["body"]
    assert graph.sends[0]["number"] == NUMBER
    with wa.sessions() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        assert (conversation.channel, conversation.citizen_ref) == ("whatsapp", "whatsapp:BR.00000000000000000001")
        assert session.scalars(select(Turn.channel).where(Turn.conversation_id == conversation_id)).all() == [
            "whatsapp"
        ]


def test_a_redelivered_message_never_produces_a_second_reply(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    body = message_body(wamid="wamid.T2", text="Olá")
    deliver(client, body)
    deliver(client, body)
    wa.drain()
    deliver(client, body)  # Meta redelivers for days
    wa.drain()
    assert count(wa, Turn) == 1
    assert len(sent_bodies(graph)) == 1


def test_a_crash_before_the_commit_leaves_nothing_and_the_retry_answers_once(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(client, message_body(wamid="wamid.T3", text="Olá"))
    real_add = wa.outbox.add

    def crash(*args: Any, **kwargs: Any) -> list[int]:
        monkeypatch.setattr(wa.outbox, "add", real_add)
        raise RuntimeError("worker died mid-transaction")

    monkeypatch.setattr(wa.outbox, "add", crash)
    wa.processor().run_once()
    assert count(wa, Turn) == 0  # the turn was rolled back with the reply
    assert count(wa, Message) == 0

    wa.drain()
    assert count(wa, Turn) == 1
    assert len(sent_bodies(graph)) == 1


def test_a_worker_that_lost_its_lease_cannot_answer_a_second_time(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.T4", text="Olá"))
    [stale] = wa.inbox.claim("slow-worker", channel="whatsapp", limit=1, lease_s=-1)  # its lease is already over
    assert wa.processor("fast-worker").run_once() == 1
    wa.processor("slow-worker").process(stale)
    wa.drain()
    assert count(wa, Turn) == 1
    assert count(wa, OutboxRow) == 1
    assert len(sent_bodies(graph)) == 1


def test_an_unanswerable_question_offers_a_person_with_a_button(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.T5", text="Qual é a cotação do bitcoin em marte hoje?"))
    wa.drain()
    [body] = sent_bodies(graph)
    assert body["type"] == "interactive"
    assert body["interactive"]["body"]["text"] == t("abstain")
    [button] = body["interactive"]["action"]["buttons"]
    assert button["reply"] == {"id": "atende:handoff", "title": "Falar com atendente"}


def test_the_handoff_button_hands_the_conversation_over_like_the_web_chat(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, services: Services
) -> None:
    pressed = message_body("interactive_button_reply", wamid="wamid.T6")
    pressed["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["button_reply"] = {
        "id": "atende:handoff",
        "title": "Falar com atendente",
    }
    deliver(client, pressed)
    wa.drain()
    web_id = client.post("/api/conversations").json()["id"]
    web = client.post(f"/api/conversations/{web_id}/messages", json={"text": t("whatsapp.handoff_request")}).json()
    assert web["decision"] == "handoff"

    conversation_id = conversation_of(wa)
    [(_, asked), (_, answer)] = messages(wa, conversation_id)
    assert asked == t("whatsapp.handoff_request")
    # The same handoff message; only the queue position differs (the WhatsApp citizen is first in line).
    assert re.sub(r"\d+", "#", answer) == re.sub(r"\d+", "#", web["answer"])
    assert sent_bodies(graph)[0]["text"]["body"] == answer
    with wa.sessions() as session:
        assert session.scalars(select(Turn.decision).where(Turn.conversation_id == conversation_id)).all() == [
            "handoff"
        ]
    ours = [e.kind for e in events(wa, conversation_id) if not e.kind.startswith("whatsapp_")]
    assert ours == [e.kind for e in services.store.list_events(web_id)]
    assert ours  # the handoff itself is recorded


def test_button_and_list_replies_are_read_as_the_option_chosen(
    client: TestClient, wa: WhatsAppService, model: ScriptedChatModel
) -> None:
    model.add(answer_or_decline)  # the button's question; the list row asks for an action, which the rules route
    deliver(client, message_body("interactive_button_reply", wamid="wamid.T7"))
    deliver(client, message_body("interactive_list_reply", wamid="wamid.T8"))
    wa.drain()
    users = [text for role, text in messages(wa, conversation_of(wa)) if role == "user"]
    assert users == ["Horário de atendimento", "IPTU — Segunda via e parcelamento"]
    assert count(wa, Turn) == 2


def test_a_template_quick_reply_is_read_as_its_button_text(client: TestClient, wa: WhatsAppService) -> None:
    body = message_body("button_quick_reply", wamid="wamid.T9")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["button"]["text"] = "Obrigado"
    deliver(client, body)
    wa.drain()
    assert messages(wa, conversation_of(wa)) == [("user", "Obrigado"), ("assistant", t("thanks"))]


def test_the_menu_keyword_sends_a_list_and_a_row_asks_its_question(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.M1", text="Menu"))
    wa.drain()
    [menu] = sent_bodies(graph)
    rows = menu["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == ["atende:menu:0", "atende:menu:1", "atende:handoff"]
    assert count(wa, Turn) == 0

    chosen = message_body("interactive_list_reply", wamid="wamid.M2")
    chosen["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]["list_reply"] = rows[0]
    deliver(client, chosen)
    wa.drain()
    assert messages(wa, conversation_of(wa))[-2] == ("user", "Segunda via do IPTU")


def test_a_message_over_the_length_limit_gets_a_clear_reply(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.L1", text="a" * 2500))
    wa.drain()
    [body] = sent_bodies(graph)
    assert body["text"]["body"] == t("error.message_too_long", max=2000)
    assert count(wa, Turn) == 0


# Media, location, reactions, the unsupported


def test_a_voice_note_is_fetched_within_limits_and_acknowledged(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, settings: Settings
) -> None:
    graph.add_media(media_id("audio_voice"), OGG, "audio/ogg")
    deliver(client, message_body("audio_voice", wamid="wamid.V1"))
    wa.drain()
    with wa.sessions() as session:
        media = session.scalars(select(MediaRow)).one()
        assert (media.kind, media.voice, media.state, media.file_size) == ("audio", True, "stored", len(OGG))
        assert media.path is not None
    assert (Path(settings.data_dir) / media.path).read_bytes() == OGG
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.audio_received")
    assert messages(wa, conversation_of(wa))[0] == ("user", "[áudio]")
    assert count(wa, Turn) == 0


def test_an_image_of_a_type_not_accepted_is_refused_without_downloading(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    body = message_body("image", wamid="wamid.V2")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["mime_type"] = "image/gif"
    deliver(client, body)
    wa.drain()
    assert graph.media_calls == []
    with wa.sessions() as session:
        assert session.scalars(select(MediaRow.state)).all() == ["rejected"]
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.file_rejected", max_mb=16)


def test_an_image_larger_than_the_limit_is_refused(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    graph.add_media(media_id("image"), b"\xff\xd8jpeg", "image/jpeg", declared_size=50 * 1024 * 1024)
    deliver(client, message_body("image", wamid="wamid.V3"))
    wa.drain()
    with wa.sessions() as session:
        assert session.scalars(select(MediaRow.reason)).all() == ["too large"]
    assert f"/media/{media_id('image')}" not in " ".join(graph.unexpected)


def test_a_media_url_on_a_host_not_allowed_gets_no_token_and_the_citizen_is_told(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # Same fake server under another name: the old code would have sent it the bearer token and stored the file.
    graph.add_media(
        media_id("image"),
        b"\xff\xd8\xff\xe0jpeg-bytes",
        "image/jpeg",
        origin=graph.url.replace("127.0.0.1", "localhost"),
    )
    with caplog.at_level(logging.WARNING, logger="channels.whatsapp.graph"):
        deliver(client, message_body("image", wamid="wamid.V7"))
        wa.drain()
    assert graph.media_downloads == []
    with wa.sessions() as session:
        assert session.scalars(select(MediaRow.state)).all() == ["failed"]
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.file_failed")
    assert any("not an allowed media host" in r.getMessage() for r in caplog.records)


def test_an_image_is_stored_and_acknowledged(client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    graph.add_media(media_id("image"), b"\xff\xd8\xff\xe0jpeg-bytes", "image/jpeg")
    deliver(client, message_body("image", wamid="wamid.V4"))
    wa.drain()
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.file_received", kind="imagem")
    with wa.sessions() as session:
        assert session.scalars(select(MediaRow.state)).all() == ["stored"]


def test_a_document_caption_is_answered_by_the_assistant(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    graph.add_media(media_id("document"), b"%PDF-1.7 test", "application/pdf")
    body = message_body("document", wamid="wamid.V5")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["document"]["caption"] = "Obrigada"
    deliver(client, body)
    wa.drain()
    assert messages(wa, conversation_of(wa)) == [("user", "Obrigada"), ("assistant", t("thanks"))]
    with wa.sessions() as session:
        assert session.scalars(select(MediaRow.filename)).all() == ["comprovante.pdf"]


def test_a_location_is_recorded_and_acknowledged(client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    deliver(client, message_body("location", wamid="wamid.P1"))
    wa.drain()
    [event] = [e for e in events(wa, conversation_of(wa)) if e.kind == "whatsapp_location"]
    assert event.payload == {
        "latitude": -15.7997,
        "longitude": -47.8645,
        "name": "Praça dos Três Poderes",
        "address": "Brasília - DF",
    }
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.location_received")


def test_a_reaction_is_recorded_without_a_reply(client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI) -> None:
    deliver(client, message_body("reaction", wamid="wamid.R1"))
    wa.drain()
    assert [e.payload for e in events(wa, conversation_of(wa)) if e.kind == "whatsapp_reaction"] == [
        {"message_id": "wamid.atende.out.0001", "emoji": "👍"}
    ]
    assert graph.sends == []


@pytest.mark.parametrize("fixture_name", ["sticker", "unsupported"])
def test_anything_unsupported_gets_a_friendly_reply(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, fixture_name: str
) -> None:
    deliver(client, message_body(fixture_name, wamid="wamid.U1"))
    wa.drain()
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.unsupported")
    assert count(wa, Turn) == 0


# Opt-out, identities, numbers


@pytest.mark.parametrize("keyword", ["SAIR", "parar", " Sair! "])
def test_opt_out_keywords_are_honoured_at_once(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, keyword: str
) -> None:
    ref = "whatsapp:BR.00000000000000000001"
    wa.consent.record(ref, "whatsapp", "campanhas", "opt_in", "test")
    deliver(client, message_body(wamid="wamid.O1", text=keyword))
    wa.drain()
    assert not wa.consent.is_opted_in(ref, "whatsapp", "campanhas")
    assert sent_bodies(graph)[0]["text"]["body"] == t("whatsapp.opted_out", organization="Prefeitura de Santa Aurora")
    assert count(wa, Turn) == 0


def test_a_sentence_that_mentions_leaving_is_a_question_not_an_opt_out(client: TestClient, wa: WhatsAppService) -> None:
    ref = "whatsapp:BR.00000000000000000001"
    wa.consent.record(ref, "whatsapp", "campanhas", "opt_in", "test")
    deliver(client, message_body(wamid="wamid.O2", text="quero sair da fila do atendimento"))
    wa.drain()
    assert wa.consent.is_opted_in(ref, "whatsapp", "campanhas")
    assert count(wa, Turn) == 1


def test_a_citizen_without_a_shared_phone_is_answered_by_business_scoped_id(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.I1", text="Olá", with_phone=False))
    wa.drain()
    [send] = graph.sends
    assert send["json"]["recipient"] == "BR.00000000000000000001"
    assert "to" not in send["json"]


def test_each_business_number_answers_from_itself_with_its_team(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.N1", text="Olá", number=NUMBER_B))
    wa.drain()
    assert [s["number"] for s in graph.sends] == [NUMBER_B]
    [started] = [
        e for e in events(wa, conversation_of(wa, number=NUMBER_B)) if e.kind == "whatsapp_conversation_started"
    ]
    assert started.payload == {"phone_number_id": NUMBER_B, "team": "tributos"}


def test_a_number_served_by_people_queues_the_conversation_without_the_assistant(
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
            deliver(client, message_body(wamid="wamid.Q2", text="É sobre a coleta de lixo"))
            assert svc.whatsapp is not None
            svc.whatsapp.drain()
            conversation_id = conversation_of(svc.whatsapp)
            assert svc.whatsapp.conversation_state(conversation_id) == "waiting"
            assert [b["text"]["body"] for b in sent_bodies(graph)] == [t("handoff.people_only_received")]
            assert count(svc.whatsapp, Turn) == 0
            assert [m for m in messages(svc.whatsapp, conversation_id) if m[0] == "user"] == [
                ("user", "Quero registrar uma reclamação"),
                ("user", "É sobre a coleta de lixo"),
            ]
    finally:
        svc.close()


def test_a_reply_whose_window_closed_before_sending_is_not_sent(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.W1", text="Olá", at=time.time() - 25 * 3600))
    wa.drain()
    assert graph.sends == []
    [failure] = wa.outbox.failures()
    assert failure["error_code"] == "outside_window"


def test_processed_items_keep_no_copy_of_the_citizens_message(client: TestClient, wa: WhatsAppService) -> None:
    deliver(client, message_body(wamid="wamid.G1", text="Meu CPF é 123"))
    wa.drain()
    with wa.sessions() as session:
        row = session.scalars(select(InboxRow)).one()
        assert (row.state, row.payload) == ("done", {})


# Delivery statuses


def _reply_wamid(graph: FakeGraphAPI) -> str:
    wamid: str = graph.sends[-1]["wamid"]
    return wamid


def test_statuses_in_any_order_end_in_the_furthest_one(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.S1", text="Olá"))
    wa.drain()
    wamid = _reply_wamid(graph)
    for status in ("read", "sent", "delivered", "sent"):
        deliver(client, status_body(wamid, status))
    wa.drain()
    assert wa.outbox.find("reply:m:wamid.S1:0")["status"] == "read"  # type: ignore[index]


def test_a_failure_is_recorded_with_its_code_and_shown_to_staff(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, services: Services
) -> None:
    deliver(client, message_body(wamid="wamid.S2", text="Olá"))
    wa.drain()
    deliver(client, status_body(_reply_wamid(graph), "failed"))  # the fixture's error 131047
    wa.drain()
    token = staff_token(services)
    failures = client.get("/api/whatsapp/failures", headers={"Authorization": f"Bearer {token}"}).json()
    [failure] = failures["outbound"]
    assert failure["error_code"] == "131047"
    assert failure["error_title"].startswith("Re-engagement message")
    assert failure["conversation_id"] == conversation_of(wa)
    assert "whatsapp_delivery_failed" in [e.kind for e in events(wa, conversation_of(wa))]


def test_a_failure_reported_after_delivery_does_not_undo_it(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    deliver(client, message_body(wamid="wamid.S3", text="Olá"))
    wa.drain()
    wamid = _reply_wamid(graph)
    deliver(client, status_body(wamid, "delivered"))
    deliver(client, status_body(wamid, "failed"))
    wa.drain()
    assert wa.outbox.find("reply:m:wamid.S3:0")["status"] == "delivered"  # type: ignore[index]


def test_a_status_that_overtakes_the_send_answer_is_matched_by_its_tracking_data(
    client: TestClient, wa: WhatsAppService
) -> None:
    deliver(client, message_body(wamid="wamid.S4", text="Olá"))
    wa.processor().run_until_idle()
    [item] = wa.outbox.claim_due("sender", limit=1, lease_s=60)  # sending, no answer from the API yet
    deliver(client, status_body("wamid.early", "delivered", opaque=item.opaque))
    wa.processor().run_until_idle()
    wa.outbox.accepted(item.id, "wamid.early")
    found = wa.outbox.find("reply:m:wamid.S4:0")
    assert found is not None
    assert (found["status"], found["wamid"]) == ("delivered", "wamid.early")


def test_a_status_for_an_unknown_message_waits_then_is_set_aside(client: TestClient, wa: WhatsAppService) -> None:
    deliver(client, status_body("wamid.nobody", "delivered"))
    wa.drain()
    with wa.sessions() as session:
        row = session.scalars(select(InboxRow)).one()
        assert row.state == "pending"
        assert row.not_before is not None
        session.execute(update(InboxRow).values(received_at=utcnow() - timedelta(hours=1), not_before=None))
        session.commit()
    wa.drain()
    with wa.sessions() as session:
        assert session.scalars(select(InboxRow.result)).one() == "status:delivered:orphan"


# Running inside the app, LGPD, template reviews


def test_inside_the_app_the_workers_answer_on_their_own(
    test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]
) -> None:
    settings = whatsapp_settings(test_settings, graph.url, whatsapp_worker="inline")
    svc = make_services(settings, ScriptedChatModel([]), knowledge_documents)
    try:
        with TestClient(create_app(services=svc)) as client:
            deliver(client, message_body(wamid="wamid.A1", text="Olá"))
            assert graph.wait_for_sends(1)
        assert sent_bodies(graph)[0]["text"]["body"].startswith("Olá!")
    finally:
        svc.close()


def test_a_citizens_whatsapp_data_is_exported_and_erased(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, services: Services, settings: Settings
) -> None:
    from core.data_subjects import DataSubject

    graph.add_media(media_id("image"), b"\xff\xd8\xff\xe0jpeg-bytes", "image/jpeg")
    deliver(client, message_body("image", wamid="wamid.E1"))
    wa.drain()
    assert services.lgpd is not None
    subject = DataSubject(citizen_refs=("whatsapp:BR.00000000000000000001",))
    exported = services.lgpd.data_subjects.export(subject)["whatsapp"]
    assert exported["contacts"][0]["phone"] == PHONE_1
    assert exported["media"][0]["kind"] == "image"
    with wa.sessions() as session:
        stored = Path(settings.data_dir) / str(session.scalars(select(MediaRow.path)).one())
    assert stored.exists()

    assert services.lgpd.data_subjects.erase(subject)["whatsapp"] == 2
    assert not stored.exists()
    assert services.lgpd.data_subjects.export(subject)["whatsapp"] == {"contacts": [], "media": []}
    with wa.sessions() as session:
        contact = session.scalars(select(ContactRow)).one()
        media = session.scalars(select(MediaRow)).one()
    assert (contact.wa_id, contact.bsuid, contact.profile_name) == (None, None, None)
    assert contact.citizen_ref.startswith("anonimizado:")
    assert (media.path, media.filename) == (None, None)


def phone_only(body: dict[str, Any]) -> dict[str, Any]:
    """A webhook body as Meta sent it before business-scoped ids: the citizen is known by phone number alone."""
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0].pop("user_id", None)
    value["messages"][0].pop("from_user_id", None)
    return body


def every_row(services: Services) -> str:
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(services.engine)
    with services.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row)) for table in metadata.sorted_tables for row in connection.execute(select(table))
        )


def test_a_citizen_known_only_by_phone_is_named_by_a_pseudonym_and_erase_leaves_the_number_nowhere(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI, services: Services
) -> None:
    from core.data_subjects import DataSubject

    phone = "5561900000007"
    deliver(client, phone_only(message_body(wamid="wamid.T1", citizen=7, text="Olá")))
    deliver(client, phone_only(message_body(wamid="wamid.T2", citizen=7, text="SAIR")))
    wa.drain()
    with wa.sessions() as session:
        ref = session.scalars(select(ContactRow.citizen_ref)).one()
        conversation_ref = session.scalars(select(Conversation.citizen_ref)).one()
    assert re.fullmatch(r"whatsapp:tel\.[0-9a-f]{32}", ref)
    assert conversation_ref == ref
    assert phone in every_row(services)  # the contact's wa_id, needed to answer, until erase

    assert services.lgpd is not None
    report = services.lgpd.rights.erase(DataSubject(citizen_refs=(f"whatsapp:+{phone}",)), actor="user:1")

    assert report.rows["whatsapp"] == 1
    assert report.rows["conversations"] > 0
    assert report.subject_key == ref
    assert phone[2:] not in every_row(services)


def test_metas_template_review_updates_the_register(client: TestClient, wa: WhatsAppService) -> None:
    from channels.whatsapp.templates import TemplateSpec

    wa.templates.register(TemplateSpec("aviso", "pt_BR", "UTILITY", "Aviso: {{1}}", ["texto"], status="PENDING"))
    change = {
        "field": "message_template_status_update",
        "value": {"event": "APPROVED", "message_template_name": "aviso", "message_template_language": "pt_BR"},
    }
    deliver(client, {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]})
    wa.drain()
    template = wa.templates.get("aviso", "pt_BR")
    assert template is not None
    assert template.status == "APPROVED"


def test_a_request_to_act_goes_through_the_same_tool_dialogue_as_the_web_chat(
    client: TestClient, wa: WhatsAppService, graph: FakeGraphAPI
) -> None:
    request = "Quero ver meus débitos com a prefeitura"
    deliver(client, message_body(wamid="wamid.K1", text=request))
    wa.drain()
    web_id = client.post("/api/conversations").json()["id"]
    web = client.post(f"/api/conversations/{web_id}/messages", json={"text": request}).json()
    assert web["route"] == "action"
    assert messages(wa, conversation_of(wa)) == [("user", request), ("assistant", web["answer"])]
    assert sent_bodies(graph)[0]["text"]["body"] == web["answer"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", True),
        ("https://scontent.xx.fbcdn.net/v/t1/1.jpg", True),
        ("https://mmg.whatsapp.net/d/f/1.enc", True),
        ("http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", False),
        ("https://lookaside.fbsbx.com.evil.example/x", False),
        ("https://evilfbcdn.net/x", False),
        ("https://evil.example/media/1", False),
        ("http://127.0.0.1:8931/media/1", True),  # the Graph API's own origin
        ("http://127.0.0.1:8932/media/1", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_metas_media_hosts_and_the_graph_origin_may_receive_the_token(url: str, allowed: bool) -> None:
    from channels.whatsapp.graph import MediaHostPolicy

    assert MediaHostPolicy("http://127.0.0.1:8931/v23.0").allows(url) is allowed

"""The webhook as Meta calls it: the verification handshake, signed deliveries, and the durable inbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, text
from whatsapp_support import (
    APP_SECRET,
    NUMBER,
    VERIFY_TOKEN,
    combine,
    encode,
    fixture,
    message_body,
    signed_headers,
    status_body,
    whatsapp_settings,
)

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from channels.whatsapp.payloads import Sender, fan_out, parse_message, parse_status
from channels.whatsapp.signature import is_valid, sign
from conversation.models import InboxRow
from core.settings import Settings
from rag.types import Document

PATH = "/webhooks/whatsapp"


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture
def wa_services(
    test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]
) -> Iterator[Services]:
    svc = make_services(whatsapp_settings(test_settings, graph.url), ScriptedChatModel([]), knowledge_documents)
    yield svc
    svc.close()


@pytest.fixture
def client(wa_services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=wa_services)) as test_client:
        yield test_client


def post(client: TestClient, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else encode(body)
    return client.post(PATH, content=raw, headers=headers if headers is not None else signed_headers(raw))


def inbox(services: Services) -> list[InboxRow]:
    assert services.whatsapp is not None
    with services.whatsapp.sessions() as session:
        return list(session.scalars(select(InboxRow).order_by(InboxRow.id)))


# Verification handshake


def test_the_handshake_echoes_the_challenge_when_the_verify_token_matches(client: TestClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = client.get(PATH, params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
    ],
)
def test_the_handshake_refuses_a_wrong_token_or_mode(client: TestClient, params: dict[str, str]) -> None:
    response = client.get(PATH, params=params)
    assert response.status_code == 403
    assert response.json()["code"] == "verification_failed"
    assert "inválido" in response.json()["detail"]


# Signatures


def test_a_signature_is_the_hmac_sha256_of_the_raw_body() -> None:
    raw = b'{"object":"whatsapp_business_account"}'
    header = sign(APP_SECRET, raw)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert is_valid(APP_SECRET, raw, header)
    assert not is_valid(APP_SECRET, raw + b" ", header)
    assert not is_valid("", raw, sign("", raw))
    assert not is_valid(APP_SECRET, raw, header.removeprefix("sha256="))


@pytest.mark.parametrize(
    ("secret", "body", "expected"),
    [
        # RFC 4231, test case 2 (HMAC-SHA-256).
        ("Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        # A webhook-shaped body; the hex was computed once with Python's hmac module (and agrees with openssl).
        (
            "known-answer-app-secret",
            b'{"object":"whatsapp_business_account","entry":[]}',
            "78f9ae06b48d1401e1ec3edd1921e2b5ff68fc5319b26bfe03c6466430dcb8c8",
        ),
        # The secret is taken as UTF-8, the body as the raw bytes received.
        (
            "segredo-do-app-çã",
            "Olá, prefeitura".encode(),
            "b39deb9d7dc4b8e9efb6e7a2d96f977fd731303043da336c072a65174672b8ae",
        ),
    ],
)
def test_the_signature_matches_known_hmac_sha256_answers(secret: str, body: bytes, expected: str) -> None:
    assert sign(secret, body) == f"sha256={expected}"
    assert is_valid(secret, body, f"sha256={expected}")
    one_digit_off = expected[:-1] + ("1" if expected.endswith("0") else "0")
    assert not is_valid(secret, body, f"sha256={one_digit_off}")


def test_a_signed_delivery_is_stored_and_acknowledged(client: TestClient, wa_services: Services) -> None:
    response = post(client, message_body(wamid="wamid.A1"))
    assert response.status_code == 200
    [row] = inbox(wa_services)
    assert (row.channel, row.key, row.kind, row.state, row.account) == (
        "whatsapp",
        "m:wamid.A1",
        "message",
        "pending",
        NUMBER,
    )
    assert row.payload["message"]["text"]["body"] == "Qual o horário de atendimento da prefeitura?"


def test_a_delivery_signed_with_another_secret_is_refused_and_not_stored(
    client: TestClient, wa_services: Services
) -> None:
    raw = encode(message_body(wamid="wamid.A2"))
    response = post(client, raw, signed_headers(raw, secret="someone-else"))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert inbox(wa_services) == []


def test_a_delivery_without_a_signature_is_refused(client: TestClient, wa_services: Services) -> None:
    response = post(client, encode(message_body(wamid="wamid.A3")), {"Content-Type": "application/json"})
    assert response.status_code == 401
    assert inbox(wa_services) == []


def test_a_body_changed_after_signing_is_refused(client: TestClient, wa_services: Services) -> None:
    raw = encode(message_body(wamid="wamid.A4", text="Olá"))
    headers = signed_headers(raw)
    response = post(client, raw.replace(b"Ol", b"Xl"), headers)
    assert response.status_code == 401
    assert inbox(wa_services) == []


def test_without_an_app_secret_every_delivery_is_refused(
    test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]
) -> None:
    settings = whatsapp_settings(test_settings, graph.url, whatsapp_app_secret=SecretStr(""))
    svc = make_services(settings, ScriptedChatModel([]), knowledge_documents)
    try:
        with TestClient(create_app(services=svc)) as client:
            raw = encode(message_body(wamid="wamid.A5"))
            assert post(client, raw, signed_headers(raw, secret="")).status_code == 401
    finally:
        svc.close()


# The inbox


def test_a_redelivered_message_is_stored_once(client: TestClient, wa_services: Services) -> None:
    body = message_body(wamid="wamid.B1")
    assert [post(client, body).status_code for _ in range(3)] == [200, 200, 200]
    assert [row.key for row in inbox(wa_services)] == ["m:wamid.B1"]


def test_a_batched_delivery_fans_out_into_one_row_per_message_and_status(
    client: TestClient, wa_services: Services
) -> None:
    body = combine(
        message_body(wamid="wamid.C1", citizen=1),
        message_body("image", wamid="wamid.C2", citizen=2),
        status_body("wamid.out1", "delivered"),
        status_body("wamid.out1", "read"),
    )
    assert post(client, body).status_code == 200
    rows = inbox(wa_services)
    assert [(r.kind, r.key) for r in rows] == [
        ("message", "m:wamid.C1"),
        ("message", "m:wamid.C2"),
        ("status", "s:wamid.out1:delivered"),
        ("status", "s:wamid.out1:read"),
    ]


def test_each_fixture_is_read_as_its_message_type() -> None:
    expected = {
        "text_message": ("text", "Qual o horário de atendimento da prefeitura?", None),
        "interactive_button_reply": ("button_reply", "Horário de atendimento", "menu-horario"),
        "interactive_list_reply": ("list_reply", "IPTU — Segunda via e parcelamento", "servico-iptu"),
        "button_quick_reply": ("button", "Confirmo", "lembrete-confirmar"),
        "audio_voice": ("audio", None, None),
        "image": ("image", None, None),
        "document": ("document", "Comprovante de residência", None),
        "location": ("location", None, None),
        "reaction": ("reaction", None, None),
        "sticker": ("unsupported", None, None),
        "unsupported": ("unsupported", None, None),
    }
    for name, (kind, text_, reply_id) in expected.items():
        [item] = fan_out(fixture(name))
        inbound = parse_message(item.payload)
        assert (inbound.type, inbound.text, inbound.reply_id) == (kind, text_, reply_id), name
        assert inbound.sender == Sender(bsuid="BR.61740028293315409873", wa_id="5561988880001", name="Maria da Silva")
        assert inbound.phone_number_id == NUMBER
    audio = parse_message(fan_out(fixture("audio_voice"))[0].payload).media
    assert audio is not None
    assert audio.voice
    assert audio.mime_type == "audio/ogg; codecs=opus"
    document = parse_message(fan_out(fixture("document"))[0].payload).media
    assert document is not None
    assert document.filename == "comprovante.pdf"
    reaction = parse_message(fan_out(fixture("reaction"))[0].payload).reaction
    assert reaction == {"message_id": "wamid.atende.out.0001", "emoji": "👍"}


def test_status_fixtures_are_keyed_by_message_and_status() -> None:
    names = ("status_sent", "status_delivered", "status_read", "status_failed")
    assert [fan_out(fixture(name))[0].key for name in names] == [
        "s:wamid.atende.out.0001:sent",
        "s:wamid.atende.out.0001:delivered",
        "s:wamid.atende.out.0001:read",
        "s:wamid.atende.out.0001:failed",
    ]
    [failed] = [parse_status(fan_out(fixture("status_failed"))[0].payload)]
    assert [error["code"] for error in failed.errors] == [131047]


def test_a_signed_but_unreadable_body_is_kept_for_inspection(client: TestClient, wa_services: Services) -> None:
    assert post(client, b"{not json").status_code == 200
    [row] = inbox(wa_services)
    assert row.kind == "other"
    assert row.payload == {"body": {"unparsed": "{not json"}}


def test_when_the_inbox_cannot_be_written_meta_is_told_to_retry(client: TestClient, wa_services: Services) -> None:
    assert wa_services.whatsapp is not None
    with wa_services.whatsapp.engine.begin() as connection:
        connection.execute(text("DROP TABLE inbox"))
    response = post(client, message_body(wamid="wamid.D1"))
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"

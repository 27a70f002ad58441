"""Two-way translation between a citizen and the agent: detection, the model's prompt, failures, console, web chat."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import forward_to_agent_now
from sqlalchemy.orm import Session, sessionmaker

from assistant.agent_aids.translation import LLMTranslator, TranslationError
from assistant.backends import LlamaCppChatModel
from assistant.llm import ChatMessage, LLMError
from assistant.testing import FailingChatModel, ScriptedChatModel
from atende.app import create_app
from atende.lgpd.sources import anonymise_conversations
from atende.services import Services
from channels.testing import ScriptedDelivery
from channels.webchat.testing import keep_only_chat_key
from core.accounts.testing import ManualClock, create_user, rewire, sign_in_directly
from core.db import make_engine, make_session_factory
from core.i18n import t
from core.migrate import upgrade
from core.models import utcnow
from core.store import ConversationStore
from handoff.annotations import MessageTranslation, citizen_text
from handoff.live import InMemoryLiveState
from handoff.records import conversation_topic
from handoff.service import HandoffService

AGENT = "user:7"
CPF = "529.982.247-25"
QUESTION_EN = "How do I get a copy of my property tax bill?"
QUESTION_PT = "Como eu tiro a segunda via do meu boleto do IPTU?"
REPLY_PT = "Você pode emitir a segunda via no Portal do Contribuinte, na opção IPTU."
REPLY_EN = "You can issue the copy on the Taxpayer Portal, under the IPTU option."


def database(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
    upgrade(url)
    return make_session_factory(make_engine(url))


def service(sessions: sessionmaker[Session], model: ScriptedChatModel | FailingChatModel) -> HandoffService:
    return HandoffService(sessions, ConversationStore(sessions), InMemoryLiveState(), translator=LLMTranslator(model))


def served(handoff: HandoffService, delivery: ScriptedDelivery | None = None) -> str:
    """A conversation an agent has taken, on a channel that records what the citizen is sent."""
    delivery = delivery or ScriptedDelivery()
    handoff.register_delivery("test", delivery)
    cid = handoff.store.create_conversation("test").id
    delivery.expect(cid)
    handoff.request(cid, reason="citizen_request", source="citizen_request")
    handoff.claim(cid, AGENT)
    return cid


def translates_to(expected: str, source: str, target: str) -> Callable[[Sequence[ChatMessage]], str]:
    """A scripted step that checks the prompt asks for this language pair, then answers `expected`."""

    def step(messages: Sequence[ChatMessage]) -> str:
        assert f"Translate this {source} text into {target}." in messages[-1]["content"]
        return expected

    return step


def test_an_english_message_reaches_the_agent_with_its_portuguese_translation(tmp_path: Path) -> None:
    model = ScriptedChatModel([translates_to(QUESTION_PT, "English", "Brazilian Portuguese")])
    handoff = service(database(tmp_path), model)
    cid = served(handoff)
    updates = handoff.live.subscribe(conversation_topic(cid))

    body = forward_to_agent_now(handoff, cid, QUESTION_EN)

    assert body is not None
    assert body.answer == t("handoff.forwarded")
    [message] = [m for m in handoff.store.list_messages(cid) if m.role == "user"]
    assert message.text == QUESTION_EN  # the citizen's words are kept as written
    assert handoff.translations(cid) == {message.id: MessageTranslation("en", QUESTION_PT, "pt-BR")}
    conversation = handoff.store.get_conversation(cid)
    assert conversation is not None
    assert conversation.language == "en"  # replies go out in it
    assert model.calls[0][1]["content"].endswith(f"English: {QUESTION_EN}\nBrazilian Portuguese:")
    events = [updates.next(0) for _ in range(2)]
    assert [e["event"] for e in events if e] == ["message", "translated"]  # the console refreshes for both
    model.assert_consumed()


def test_a_portuguese_message_is_not_translated_and_the_model_is_never_called(tmp_path: Path) -> None:
    model = ScriptedChatModel([])
    handoff = service(database(tmp_path), model)
    cid = served(handoff)

    forward_to_agent_now(handoff, cid, QUESTION_PT)

    assert model.calls == []
    assert list(handoff.translations(cid).values()) == [MessageTranslation("pt-BR")]


def test_the_agents_reply_reaches_the_citizen_translated_with_the_original_below(tmp_path: Path) -> None:
    model = ScriptedChatModel([QUESTION_PT, translates_to(REPLY_EN, "Brazilian Portuguese", "English")])
    handoff = service(database(tmp_path), model)
    delivery = ScriptedDelivery()
    cid = served(handoff, delivery)
    forward_to_agent_now(handoff, cid, QUESTION_EN)

    sent = handoff.reply(cid, AGENT, REPLY_PT)

    assert sent.text == REPLY_PT  # the agent's words, as the console shows them
    assert delivery.texts(cid) == [citizen_text(REPLY_PT, REPLY_EN, "en")]
    assert delivery.texts(cid)[0] == f"{REPLY_EN}\n\n(Automatic translation. Original message: {REPLY_PT})"
    assert handoff.translations(cid)[sent.id] == MessageTranslation("pt-BR", REPLY_EN, "en")
    model.assert_consumed()


def test_an_agent_whose_profile_speaks_the_citizens_language_reads_and_writes_it_untranslated(
    tmp_path: Path,
) -> None:
    from handoff.assignment import Profile

    model = ScriptedChatModel([])  # any call to the model fails the test
    handoff = service(database(tmp_path), model)
    handoff.save_profile(Profile(AGENT, ("atendimento",), 3, (), ("en", "pt-BR")))
    delivery = ScriptedDelivery()
    cid = served(handoff, delivery)

    forward_to_agent_now(handoff, cid, QUESTION_EN)
    handoff.reply(cid, AGENT, REPLY_EN)

    assert model.calls == []
    assert delivery.texts(cid) == [REPLY_EN]


def test_a_short_message_is_read_in_the_language_the_citizen_has_been_writing(tmp_path: Path) -> None:
    model = ScriptedChatModel([QUESTION_PT, "Ok, obrigado"])
    handoff = service(database(tmp_path), model)
    cid = served(handoff)
    forward_to_agent_now(handoff, cid, QUESTION_EN)

    forward_to_agent_now(handoff, cid, "Ok, thanks")

    last = handoff.store.list_messages(cid)[-1]
    assert handoff.translations(cid)[last.id] == MessageTranslation("en", "Ok, obrigado", "pt-BR")


def test_a_failing_model_leaves_the_message_untranslated_but_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handoff = service(database(tmp_path), FailingChatModel("connection refused"))
    delivery = ScriptedDelivery()
    cid = served(handoff, delivery)
    question = f"My CPF is {CPF} and I still have not received the property tax bill"

    with caplog.at_level(logging.WARNING, logger="assistant.agent_aids.translation"):
        body = forward_to_agent_now(handoff, cid, question)
        sent = handoff.reply(cid, AGENT, REPLY_PT)

    assert body is not None
    assert [m.text for m in handoff.store.list_messages(cid) if m.role == "user"] == [question]
    assert list(handoff.translations(cid).values()) == [MessageTranslation("en")]  # language known, no translation
    assert delivery.texts(cid) == [REPLY_PT]  # the agent's words as written
    assert sent.text == REPLY_PT
    assert [r.getMessage() for r in caplog.records] == [
        "translation en -> pt-BR by llm failed, message left untranslated: model error: connection refused",
        "translation pt-BR -> en by llm failed, message left untranslated: model error: connection refused",
    ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("   ", "empty answer"),
        (QUESTION_EN, "answer repeats the text"),
        (  # an answer instead of a translation, as the embedded model once wrote
            "Para obter a segunda via do IPTU, você pode visitar a Secretaria de Finanças do Município ou acessar o "
            "Portal do Contribuinte na internet, com o número de inscrição do imóvel.",
            "answer of",
        ),
        ("How can I get a copy of my property tax bill, please?", "answer is still in en"),
        ("Mantenha os números e os marcadores como <CPF_1> exatamente como escritos.", "placeholders the text has not"),
    ],
)
def test_an_answer_that_is_not_a_translation_is_refused(answer: str, reason: str) -> None:
    translator = LLMTranslator(ScriptedChatModel([answer]))

    with pytest.raises(TranslationError, match=reason):
        translator.translate(QUESTION_EN, "en", "pt-BR")


@pytest.mark.parametrize("answer", [f'Tradução: "{QUESTION_PT}"', f"Brazilian Portuguese: {QUESTION_PT}"])
def test_labels_and_quotes_around_the_translation_are_removed(answer: str) -> None:
    translator = LLMTranslator(ScriptedChatModel([answer]))

    assert translator.translate(QUESTION_EN, "en", "pt-BR") == QUESTION_PT


def test_the_constrained_mode_reads_the_translation_from_json_and_refuses_unreadable_json() -> None:
    translator = LLMTranslator(
        ScriptedChatModel([json.dumps({"translation": QUESTION_PT}), "not json"]), constrained=True
    )

    assert translator.translate(QUESTION_EN, "en", "pt-BR") == QUESTION_PT
    with pytest.raises(TranslationError, match="unreadable JSON"):
        translator.translate(QUESTION_EN, "en", "pt-BR")


def test_a_remote_model_sees_placeholders_and_the_translation_gets_the_personal_data_back() -> None:
    model = ScriptedChatModel(["Meu CPF é <CPF_1> e o boleto do IPTU ainda não chegou"])
    translator = LLMTranslator(model, llm_is_local=False)

    translation = translator.translate(f"My CPF is {CPF} and the IPTU bill has not arrived yet", "en", "pt-BR")

    assert translation == f"Meu CPF é {CPF} e o boleto do IPTU ainda não chegou"
    assert CPF not in json.dumps(model.calls)
    assert "<CPF_1>" in model.calls[0][1]["content"]


def test_a_translation_that_loses_personal_data_is_refused() -> None:
    translator = LLMTranslator(ScriptedChatModel(["Meu CPF é e o boleto do IPTU ainda não chegou"]))

    with pytest.raises(TranslationError, match="personal data left out or altered: CPF"):
        translator.translate(f"My CPF is {CPF} and the IPTU bill has not arrived yet", "en", "pt-BR")


def test_a_model_error_becomes_a_translation_error() -> None:
    translator = LLMTranslator(ScriptedChatModel([LLMError("timed out")]))

    with pytest.raises(TranslationError, match="model error: timed out"):
        translator.translate(QUESTION_EN, "en", "pt-BR")


def test_erasing_a_conversation_also_erases_its_translations(tmp_path: Path) -> None:
    sessions = database(tmp_path)
    handoff = service(sessions, ScriptedChatModel([f"Meu CPF é {CPF} e o boleto não chegou"]))
    cid = served(handoff)
    forward_to_agent_now(handoff, cid, f"My CPF is {CPF} and the bill has not arrived")

    with sessions.begin() as session:
        anonymise_conversations(session, [cid], reason="erase", now=utcnow())

    [found] = handoff.translations(cid).values()
    assert found.translation == t("lgpd.anonymised_text")


# --- over the app: the console shows both versions, the web chat the delivered one --------------------------


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="https://testserver") as client:
        yield client


def test_the_console_shows_both_versions_masked_and_the_web_chat_the_translated_reply(
    app: TestClient, services: Services, scripted: ScriptedChatModel
) -> None:
    accounts = rewire(services, clock=ManualClock())
    agent = create_user(accounts, "ana.agente", "agent")
    cid = app.post("/api/conversations").json()["id"]
    app.post(f"/api/conversations/{cid}/messages", json={"text": "quero falar com um atendente"})
    scripted.add(f"Meu CPF é {CPF} e o boleto do IPTU ainda não chegou")
    app.post(f"/api/conversations/{cid}/messages", json={"text": f"My CPF is {CPF} and the IPTU bill never came"})
    keep_only_chat_key(app)
    headers = {"X-CSRF-Token": sign_in_directly(app, accounts, agent)}
    app.post(f"/api/console/conversations/{cid}/claim", headers=headers)
    scripted.add(REPLY_EN)

    sent = app.post(f"/api/console/conversations/{cid}/messages", json={"text": REPLY_PT}, headers=headers)
    view = app.get(f"/api/console/conversations/{cid}").json()
    keep_only_chat_key(app)
    chat = app.get(f"/api/conversations/{cid}").json()

    assert sent.json()["text"] == REPLY_PT
    question, reply = view["messages"][-2:]
    assert (question["language"], question["translation_language"]) == ("en", "pt-BR")
    assert question["text"] == "My CPF is [CPF] and the IPTU bill never came"
    assert question["translation"] == "Meu CPF é [CPF] e o boleto do IPTU ainda não chegou"
    assert (reply["text"], reply["translation"], reply["language"]) == (REPLY_PT, REPLY_EN, "pt-BR")
    assert CPF not in json.dumps(view)
    assert chat["messages"][-1]["text"] == citizen_text(REPLY_PT, REPLY_EN, "en")
    page = app.get("/console").text
    assert "Tradução automática ({source} → {target})" in page
    assert "inglês" in page
    scripted.assert_consumed()


@pytest.mark.llm
@pytest.mark.integration
def test_the_embedded_model_translates_a_short_english_question_into_portuguese(
    llamacpp_model: LlamaCppChatModel,
) -> None:
    translation = LLMTranslator(llamacpp_model).translate(
        "Where can I pay my property tax? The bill has not arrived.", "en", "pt-BR"
    )

    words = translation.casefold()
    assert any(word in words for word in ("onde", "posso", "pagar")), translation
    assert any(word in words for word in ("imposto", "iptu", "conta", "boleto", "fatura", "chegou")), translation

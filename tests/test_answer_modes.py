"""How knowledge answers are written: extractive by default, a checked lead-in, checked free generation, abstention
on evidence, follow-ups and questions in other languages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import make_services

from assistant.service import AssistantReply, Token
from assistant.testing import ScriptedChatModel
from atende.services import Services, assistant_alone
from conversation.messages import InboundMessage
from core.settings import Settings
from rag.types import Document

QUESTION = "Como emito a segunda via do IPTU?"


@pytest.fixture
def build(test_settings: Settings, knowledge_documents: list[Document]) -> Iterator[object]:
    made: list[Services] = []

    def make(model: ScriptedChatModel, **values: object) -> Services:
        settings = test_settings.model_copy(
            update={"answer_mode": "extractive", "evidence_threshold": 0.35, "answer_translation": False, **values}
        )
        services = make_services(settings, model, knowledge_documents)
        made.append(services)
        return services

    yield make
    for s in made:
        s.close()


def ask(services: Services, text: str, cid: str | None = None) -> tuple[list[str], AssistantReply]:
    cid = cid or services.store.create_conversation("web").id
    tokens: list[str] = []
    reply: AssistantReply | None = None
    for event in assistant_alone(services).handle_stream(InboundMessage(channel="web", conversation_id=cid, text=text)):
        if isinstance(event, Token):
            tokens.append(event.text)
        else:
            reply = event.reply
    assert reply is not None
    return tokens, reply


def test_by_default_the_answer_is_the_articles_own_steps_with_no_model_call(build) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedChatModel([])  # any model call fails the test
    services = build(model)

    tokens, reply = ask(services, QUESTION)

    assert reply.decision == "answered"
    assert "https://www.santaaurora.sp.gov.br/contribuinte" in reply.answer
    assert "1. Pelo portal:" in reply.answer
    assert "".join(tokens) == reply.answer
    [citation] = reply.citations
    assert citation.doc_id == "iptu-segunda-via"
    assert citation.quotes
    assert all(q in reply.answer for q in citation.quotes if not q.startswith(" "))
    assert len(reply.answer.split()) <= 80 + 5
    assert model.calls == []


def test_a_question_no_article_covers_is_abstained_on_evidence(build) -> None:  # type: ignore[no-untyped-def]
    services = build(ScriptedChatModel([]))

    tokens, reply = ask(services, "Qual a receita de bolo de cenoura com cobertura de chocolate?")

    assert reply.decision == "abstained"
    assert tokens == []
    assert "evidence" in reply.reason or "confidence" in reply.reason


def test_the_constrained_mode_puts_a_checked_lead_in_before_the_article_text(build) -> None:  # type: ignore[no-untyped-def]
    lead = "Você pode emitir o boleto pelo portal, pelo WhatsApp ou pelo telefone 156."
    services = build(ScriptedChatModel([lead]), answer_mode="constrained")

    tokens, reply = ask(services, QUESTION)

    assert reply.answer.startswith(lead + "\n")
    assert tokens[0].strip() == lead
    assert "1. Pelo portal:" in reply.answer


def test_a_lead_in_that_adds_a_fact_is_left_out(build) -> None:  # type: ignore[no-untyped-def]
    services = build(ScriptedChatModel(["A segunda via custa R$ 50,00 e sai em 3 dias."]), answer_mode="constrained")

    _, reply = ask(services, QUESTION)

    assert "50,00" not in reply.answer
    assert reply.answer.startswith("1. Pelo portal:") or "Pelo portal" in reply.answer.split("\n")[0]


def test_generated_sentences_reach_the_citizen_only_after_passing_the_check_and_are_never_withdrawn(build) -> None:  # type: ignore[no-untyped-def]
    good = "A segunda via pode ser emitida a qualquer momento, sem custo, pelo Portal do Contribuinte [1]."
    bad = " O IPTU foi extinto em 1999 e ninguém mais paga [1]."
    services = build(ScriptedChatModel([good + bad]), answer_mode="generative")

    tokens, reply = ask(services, QUESTION)

    shown = "".join(tokens)
    assert "1999" not in shown
    assert shown
    assert reply.answer.startswith(shown)
    assert "extinto" not in reply.answer


def test_a_follow_up_is_answered_for_what_it_asks(build) -> None:  # type: ignore[no-untyped-def]
    services = build(ScriptedChatModel([]))
    cid = services.store.create_conversation("web").id
    ask(services, QUESTION, cid)

    _, reply = ask(services, "e quanto custa?", cid)

    assert reply.decision == "answered"
    assert "gratuita" in reply.answer or "sem custo" in reply.answer


def test_a_spanish_question_is_answered_in_spanish_from_the_portuguese_article(build) -> None:  # type: ignore[no-untyped-def]
    services = build(ScriptedChatModel([]))
    calls: list[tuple[str, str]] = []

    def translate(text: str, source: str, target: str) -> str | None:
        calls.append((source, target))
        if target == "pt-BR":
            return QUESTION
        return "Traducción: " + text  # keeps every number of the Portuguese text

    services.assistant.translate = translate

    _, reply = ask(services, "¿Cómo puedo sacar la segunda copia del boleto del IPTU?")

    assert calls == [("es", "pt-BR"), ("pt-BR", "es")]
    assert reply.language == "es"
    assert reply.answer.startswith("Traducción:")
    assert reply.answer.endswith("[1]")


def test_a_translation_that_loses_a_number_is_not_sent(build) -> None:  # type: ignore[no-untyped-def]
    services = build(ScriptedChatModel([]))
    services.assistant.translate = lambda text, source, target: QUESTION if target == "pt-BR" else "Sin números."

    _, reply = ask(services, "How can I get a copy of my IPTU bill?")

    assert "Sin números" not in reply.answer
    assert "Portal do Contribuinte" in reply.answer or "contribuinte" in reply.answer

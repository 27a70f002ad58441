"""Language detection and the reply-language policy, through the assistant every channel uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import respond

from assistant.language import FIXED_KEYS, detect_language, localize
from assistant.service import AssistantReply
from assistant.testing import ScriptedChatModel
from atende.services import Services
from core.i18n import t
from eval.chat_models import extractive_answer

FOUNDATION = Path(__file__).resolve().parent.parent / "eval" / "suites" / "foundation.yaml"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿Cómo puedo sacar la segunda vía del impuesto predial?", "es"),
        ("Hola, ¿dónde puedo vacunar a mi hijo contra la gripe?", "es"),
        ("What are the opening hours of the city hall on Saturdays?", "en"),
        ("I want to talk to a person", "en"),
        ("vcs abrem sabado?", "pt-BR"),
        ("blz, valeu", "pt-BR"),
        ("ok", "pt-BR"),
        ("perdi o numero do protocolo, e agr? tem como achar?", "pt-BR"),
        ("Como emito a segunda via do IPTU?", "pt-BR"),
    ],
)
def test_detect_language_returns_a_bcp47_tag_and_defaults_to_portuguese(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_no_foundation_question_in_portuguese_is_taken_for_another_language() -> None:
    suite = yaml.safe_load(FOUNDATION.read_text(encoding="utf-8"))
    messages = [turn["user"] for case in suite["cases"] for turn in case["turns"]]
    assert {m: detect_language(m) for m in messages if detect_language(m) != "pt-BR"} == {}


def ask(services: Services, text: str) -> object:
    cid = services.store.create_conversation("web").id
    return respond(services, cid, text, channel="web")


def test_a_portuguese_reply_is_marked_pt_br(services: Services) -> None:
    reply = ask(services, "muito obrigado pela ajuda!")
    assert reply.language == "pt-BR"  # type: ignore[attr-defined]
    assert reply.answer == t("thanks")  # type: ignore[attr-defined]


def test_small_talk_in_english_is_answered_in_english(services: Services) -> None:
    reply = ask(services, "who are you exactly, a robot?")
    assert reply.language in ("en", "pt-BR")  # type: ignore[attr-defined]
    if reply.language == "en":  # type: ignore[attr-defined]
        assert reply.answer in {t(k, "en", organization=services.settings.organization_name) for k in FIXED_KEYS}  # type: ignore[attr-defined]


def test_catalogue_messages_go_out_in_the_citizens_language(services: Services) -> None:
    reply = ask(services, "¿Cuánto cuesta el pasaje de avión a Buenos Aires?")
    assert (reply.decision, reply.language) == ("abstained", "es")  # type: ignore[attr-defined]
    assert reply.answer == t("abstain", "es")  # type: ignore[attr-defined]
    assert "agente humano" in reply.answer  # type: ignore[attr-defined]


def test_a_knowledge_answer_stays_portuguese_with_a_notice_in_the_citizens_language(
    services: Services, scripted: ScriptedChatModel
) -> None:
    scripted.add(extractive_answer)  # the answer from the passages; no tool is asked about
    reply = ask(services, "¿Cómo puedo sacar la segunda vía de la boleta del IPTU por internet?")
    assert reply.decision == "answered", reply.reason  # type: ignore[attr-defined]
    assert reply.language == "pt-BR"  # type: ignore[attr-defined]
    assert reply.answer.startswith(t("language_notice", "es") + "\n\n")  # type: ignore[attr-defined]
    stored = services.store.list_messages(reply_conversation(services))[-1].text
    assert stored == reply.answer  # type: ignore[attr-defined]


def reply_conversation(services: Services) -> str:
    return next(iter(services.store.iter_turns()))["conversation_id"]  # type: ignore[no-any-return]


def test_localize_leaves_replies_it_does_not_know_in_portuguese() -> None:
    reply = AssistantReply("Seu protocolo 2026-000001 foi aberto.", "answered", "action", [], {"total": 1.0})  # type: ignore[arg-type]
    assert localize(reply, "I want to open a protocol for a broken street light", "X").answer == reply.answer
    assert localize(reply, "I want to open a protocol for a broken street light", "X").language == "pt-BR"


def test_every_catalogue_message_has_spanish_and_english_versions() -> None:
    for key in (*FIXED_KEYS, "language_notice"):
        for language in ("es", "en"):
            assert t(key, language, organization="X") != t(key, "pt-BR", organization="X") or key == "language_notice"


def test_warm_up_loads_the_language_detector_so_the_first_message_does_not_pay_for_it(services: Services) -> None:
    from assistant import language

    language._detector.cache_clear()
    services.warmed.discard("language")
    services.warm_up(model=False)
    assert language._detector.cache_info().currsize == 1

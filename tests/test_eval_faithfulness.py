"""Faithfulness scorers: the support score without a model, and the LLM judge."""

from __future__ import annotations

import json

from assistant.testing import ScriptedChatModel
from eval.calibrate_faithfulness import agreement, load_labels
from eval.faithfulness import JudgeScorer, SupportParams, SupportScorer, answer_sentences
from rag.testing import HashingEmbedder

CONTEXT = [
    "Zona Azul — Quanto custa\nA Zona Azul custa R$ 3,00 por hora para automóveis e R$ 1,50 por hora "
    "para motocicletas. O máximo é de 2 horas na mesma vaga."
]


def scorer() -> SupportScorer:
    return SupportScorer(HashingEmbedder())


def test_answer_sentences_drop_citations_list_markers_and_empty_lead_ins() -> None:
    answer = "Claro!\n1. A Zona Azul custa R$ 3,00 por hora [1].\n- Motos pagam R$ 1,50 [2]."
    assert answer_sentences(answer) == ["A Zona Azul custa R$ 3,00 por hora.", "Motos pagam R$ 1,50."]


def test_a_sentence_restating_the_context_is_supported() -> None:
    result = scorer().score("A Zona Azul custa R$ 3,00 por hora para automóveis [1].", CONTEXT)
    assert result.supported == (True,)
    assert result.share == 1.0


def test_a_sentence_with_a_number_missing_from_the_context_is_not_supported() -> None:
    result = scorer().score("A Zona Azul custa R$ 5,00 por hora para automóveis.", CONTEXT)
    assert result.supported == (False,)


def test_a_sentence_about_something_else_is_not_supported() -> None:
    result = scorer().score(
        "A Zona Azul custa R$ 3,00 por hora para automóveis. Idosos têm isenção total no estacionamento do shopping.",
        CONTEXT,
    )
    assert result.supported == (True, False)
    assert result.share == 0.5


def test_an_answer_without_claims_has_no_faithfulness_share() -> None:
    assert scorer().score("Ok!", CONTEXT).share is None


def test_the_threshold_decides_between_supported_and_not() -> None:
    sentence = "Motos pagam a Zona Azul por hora."
    lenient = SupportScorer(HashingEmbedder(), SupportParams(threshold=0.1)).score(sentence, CONTEXT)
    strict = SupportScorer(HashingEmbedder(), SupportParams(threshold=0.99)).score(sentence, CONTEXT)
    assert lenient.supported == (True,)
    assert strict.supported == (False,)


def test_the_llm_judge_rates_each_sentence_and_unrated_ones_count_as_unsupported() -> None:
    model = ScriptedChatModel([json.dumps({"supported": [True]})])
    result = JudgeScorer(model).score("A Zona Azul custa R$ 3,00 por hora. Motos não pagam nada.", CONTEXT)
    assert result.supported == (True, False)
    prompt = model.calls[0][-1]["content"]
    assert "1. A Zona Azul custa R$ 3,00 por hora." in prompt
    assert "R$ 1,50 por hora para motocicletas" in prompt


def test_a_judge_that_answers_garbage_supports_nothing() -> None:
    result = JudgeScorer(ScriptedChatModel(["not json"])).score("A Zona Azul custa R$ 3,00 por hora.", CONTEXT)
    assert result.supported == (False,)


def test_the_hand_labelled_set_is_large_and_balanced_enough_to_measure_agreement() -> None:
    items = load_labels()
    assert len(items) >= 40
    assert 0.3 < sum(i.supported for i in items) / len(items) < 0.7
    assert len({i.id for i in items}) == len(items)


def test_the_support_scorer_agrees_with_the_hand_labels_well_beyond_chance_even_with_hashing() -> None:
    items = load_labels()
    s = scorer()
    predicted = [s.components([i.sentence], [i.context])[0].supported(s.params) for i in items]
    result = agreement([i.supported for i in items], predicted)
    assert result["kappa"] > 0.4, result

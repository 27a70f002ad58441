"""The answer checks that stand between a small model and a citizen."""

from __future__ import annotations

from assistant.grounding import check_answer
from rag.types import Chunk, ScoredChunk


def hit(doc_id: str, text: str, score: float = 0.5) -> ScoredChunk:
    return ScoredChunk(Chunk(id=f"{doc_id}#0", doc_id=doc_id, title=doc_id, section="", text=text), score)


ALVARA = hit("alvara", "A taxa do alvará de funcionamento é R$ 187,40 e o prazo de análise é de 15 dias úteis.", 0.9)
ZONA_AZUL = hit("zona-azul", "O estacionamento rotativo custa R$ 3,00 por hora para automóveis.", 0.6)


def test_a_supported_answer_citing_the_best_document_passes() -> None:
    result = check_answer("A taxa do alvará de funcionamento é R$ 187,40 [1].", [ALVARA, ZONA_AZUL])

    assert result.supported
    assert result.cited == [1]


def test_an_answer_resting_only_on_a_lesser_document_is_rejected() -> None:
    result = check_answer("A licença custa R$ 3,00 por hora para automóveis [2].", [ALVARA, ZONA_AZUL])

    assert not result.supported
    assert "best-matching" in result.reason


def test_a_number_that_is_not_in_any_passage_is_rejected() -> None:
    result = check_answer("A taxa do alvará de funcionamento é R$ 150,00 [1].", [ALVARA])

    assert not result.supported
    assert "150" in result.reason


def test_list_markers_are_not_mistaken_for_facts() -> None:
    result = check_answer("1. A taxa do alvará de funcionamento é R$ 187,40 [1].", [ALVARA])

    assert result.supported


def test_citation_markers_beyond_the_passages_are_removed() -> None:
    result = check_answer("A taxa do alvará de funcionamento é R$ 187,40 [1][7].", [ALVARA])

    assert "[7]" not in result.answer
    assert result.cited == [1]


def test_an_answer_without_markers_is_attributed_to_the_passage_that_supports_it() -> None:
    result = check_answer("A taxa do alvará de funcionamento é R$ 187,40.", [ALVARA, ZONA_AZUL])

    assert result.supported
    assert result.cited == [1]


def test_the_refusal_marker_means_no_answer() -> None:
    assert not check_answer("NAO_SEI", [ALVARA]).supported
    assert not check_answer("Não sei.", [ALVARA]).supported


def test_a_wrong_citation_number_is_replaced_by_the_passage_the_words_come_from() -> None:
    result = check_answer("A taxa do alvará de funcionamento é R$ 187,40 [2].", [ALVARA, ZONA_AZUL])

    assert result.supported
    assert result.cited == [1]
    assert "[2]" not in result.answer


def test_an_answer_with_no_words_is_rejected() -> None:
    assert not check_answer("1 [2]", [ALVARA]).supported

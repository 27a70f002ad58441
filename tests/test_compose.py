"""Extractive answers: which parts of an article answer a question, and how they are put together."""

from __future__ import annotations

from assistant.compose import question_cues, render, select, units_of
from rag.chunking import chunk_document
from rag.lexical import LexicalIndex
from rag.types import Chunk, Document

ARTICLE = Document(
    id="cartao-biblioteca",
    title="Cartão da biblioteca municipal",
    text="""O cartão da biblioteca permite emprestar até três livros por vez.

## Documentos

Para fazer o cartão, leve:

- documento com foto;
- comprovante de residência recente;
- uma foto 3x4.

## Como solicitar

1. **Pela internet:** acesse https://biblioteca.example.gov.br e preencha o cadastro. Fica pronto em 2 dias.
2. **Presencialmente:** vá à Biblioteca Central, Rua das Letras, 45, de terça a sábado, das 9h às 18h.
3. **Pelo telefone:** ligue (19) 3555-0199 e agende a retirada.

## Valor

O cartão é gratuito. A segunda via custa R$ 5,00.

## Multas

| Atraso | Multa |
| --- | --- |
| até 7 dias | R$ 1,00 por livro |
| mais de 7 dias | R$ 3,00 por livro |
""",
)
OTHER = Document(
    id="feira",
    title="Feiras livres",
    text="As feiras livres funcionam aos domingos, das 6h às 13h, em oito bairros da cidade.",
)


def _index(*docs: Document) -> LexicalIndex:
    index = LexicalIndex()
    index.build([c for d in docs for c in chunk_document(d, max_chars=300)])
    return index


def _answer(question: str, **kw: object) -> tuple[str, float]:
    index = _index(ARTICLE, OTHER)
    selection = select(question, index.chunks_of(ARTICLE.id), index.idf, **kw)  # type: ignore[arg-type]
    return selection.text, selection.evidence


def test_a_how_question_gets_the_numbered_steps_in_order() -> None:
    text, _ = _answer("como faço pra solicitar o cartão da biblioteca?")
    steps = [line for line in text.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert [s[:2] for s in steps] == ["1.", "2.", "3."]
    assert "https://biblioteca.example.gov.br" in text


def test_a_document_question_gets_the_whole_list_with_its_lead_in() -> None:
    text, _ = _answer("quais documentos eu levo para fazer o cartão da biblioteca?")
    lines = text.splitlines()
    assert lines[0] == "Para fazer o cartão, leve:"
    assert "- documento com foto;" in lines
    assert "- uma foto 3x4." in lines


def test_a_cost_question_gets_the_price_not_the_steps() -> None:
    text, _ = _answer("quanto custa o cartão da biblioteca?")
    assert "gratuito" in text
    assert "1." not in text


def test_a_table_row_comes_with_the_header_that_names_its_columns() -> None:
    text, _ = _answer("qual a multa da biblioteca por mais de 7 dias de atraso?")
    assert "Atraso | Multa" in text
    assert "mais de 7 dias | R$ 3,00 por livro" in text


def test_a_long_list_is_cut_to_the_word_budget_by_shortening_items_not_dropping_them() -> None:
    text, _ = _answer("como faço pra solicitar o cartão da biblioteca?", max_words=45)
    assert len(text.split()) <= 45
    assert "3. Pelo telefone:" in text


def test_a_question_the_article_does_not_answer_has_little_evidence() -> None:
    _, off_topic = _answer("qual o horário da feira livre de domingo?")
    _, on_topic = _answer("quanto custa a segunda via do cartão da biblioteca?")
    assert off_topic < 0.3 < on_topic


def test_a_follow_up_is_answered_for_its_own_words_with_the_earlier_topic_as_context() -> None:
    text, _ = _answer("e quanto custa?", context="como faço o cartão da biblioteca?")
    assert "R$ 5,00" in text or "gratuito" in text
    assert "Pela internet" not in text


def test_overlapping_chunks_give_each_sentence_once() -> None:
    chunk = Chunk("d#0", "d", "T", "", "Primeira frase aqui. Segunda frase aqui.")
    again = Chunk("d#1", "d", "T", "", "Segunda frase aqui. Terceira frase aqui.")
    texts = [u.text for u in units_of([chunk, again])]
    assert texts == ["Primeira frase aqui.", "Segunda frase aqui.", "Terceira frase aqui."]


def test_sentences_of_one_paragraph_stay_on_one_line_and_items_on_their_own() -> None:
    chunk = Chunk("d#0", "d", "T", "", "Uma frase. Outra frase.\n\nVeja:\n\n- item um\n- item dois")
    assert render(units_of([chunk])) == "Uma frase. Outra frase.\nVeja:\n- item um\n- item dois"


def test_questions_are_read_for_the_kind_of_fact_they_ask_for() -> None:
    assert question_cues("Quanto custa a taxa?") == ("cost",)
    assert "where" in question_cues("onde fica o posto?")
    assert "documents" in question_cues("que documentos preciso levar")


def test_a_section_headed_by_what_was_asked_answers_with_its_list() -> None:
    doc = Document(
        id="rg",
        title="Carteira de identidade",
        text="## Documentos necessários\n\n- certidão de nascimento;\n- CPF regular.\n\n"
        "Não é preciso levar foto: ela é tirada no local para tirar a carteira.\n\n"
        "## Valor\n\nA primeira via é gratuita.",
    )
    index = _index(doc, OTHER)

    text = select("quais documentos preciso para tirar a carteira?", index.chunks_of("rg"), index.idf).text

    assert "- certidão de nascimento;" in text
    assert "- CPF regular." in text


PODA = Document(
    id="poda",
    title="Poda de árvores",
    text="""A Prefeitura cuida das árvores das calçadas, praças e canteiros.

## Árvore na calçada

O serviço é feito pela Prefeitura, sem custo. Peça pelo 156 informando o endereço.

## Risco imediato

Galhos encostados em fios de energia ou no telhado com risco de queda: ligue para a Defesa Civil, 199.

## Galhos cortados

Os galhos ficam na calçada até a equipe voltar para levar tudo embora.

## Documentos necessários

- documento com foto;
- escritura ou contrato de aluguel do imóvel.

## Valor

A autorização de corte custa R$ 80,00.

## Prazo

A vistoria é feita em até 15 dias úteis.
""",
)


def _poda(question: str) -> str:
    index = _index(PODA, OTHER)
    return select(question, index.chunks_of(PODA.id), index.idf).text


def test_the_sentence_that_asks_counts_more_than_the_story_around_it() -> None:
    text = _poda("Os galhos da árvore da calçada encostam no telhado e nos fios. Quanto tempo demora a vistoria?")
    assert "15 dias úteis" in text
    assert "Defesa Civil" not in text


def test_the_words_that_ask_for_documents_do_not_pick_a_sentence_that_merely_shares_them() -> None:
    text = _poda("o que eu preciso levar pra cortar a árvore?")
    assert "- documento com foto;" in text
    assert "- escritura ou contrato de aluguel do imóvel." in text


def test_each_kind_of_fact_asked_for_gets_its_part() -> None:
    text = _poda("Quero cortar a árvore do meu terreno. Quais documentos preciso? Quanto custa?")
    assert "- documento com foto;" in text
    assert "R$ 80,00" in text


def test_having_to_pay_asks_who_must_not_what_it_costs() -> None:
    assert question_cues("Sou aposentada e moro na minha casa. Preciso pagar IPTU?") == ("who",)
    assert "cost" in question_cues("Quanto custa pagar a taxa?")


def test_taking_someone_somewhere_is_not_a_question_about_documents() -> None:
    assert "documents" not in question_cues("tem ônibus da prefeitura pra levar ela na escola?")
    assert "documents" in question_cues("o que preciso levar?")

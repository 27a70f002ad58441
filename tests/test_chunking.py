from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import pytest

from rag.chunking import chunk_document, chunk_documents, split_sentences
from rag.loaders import load_document
from rag.types import Document


def doc(text: str, **fields: object) -> Document:
    values: dict[str, object] = {"id": "artigo", "title": "Segunda via do IPTU", "text": text}
    values.update(fields)
    return Document(**values)  # type: ignore[arg-type]


ARTICLE = """
Texto de abertura sobre o IPTU.

## Documentos

Leve um documento com foto e o carnê antigo, ou informe a inscrição imobiliária do imóvel.

### Pessoa jurídica

Contrato social e cartão do CNPJ, além da procuração quando quem solicita não é sócio.

## Prazo

A emissão é imediata no portal e leva até dois dias úteis no atendimento presencial.
"""


def sentence(n: int) -> str:
    return f"Esta é a frase número {n} sobre o atendimento ao contribuinte na prefeitura."


# --------------------------------------------------------------------------- sections


def test_sections_carry_the_heading_path_under_the_title() -> None:
    chunks = chunk_document(doc(ARTICLE))

    assert [c.section for c in chunks] == ["", "Documentos", "Documentos > Pessoa jurídica", "Prazo"]


def test_intro_before_the_first_heading_has_an_empty_section() -> None:
    first = chunk_document(doc(ARTICLE))[0]

    assert (first.section, first.text) == ("", "Texto de abertura sobre o IPTU.")


def test_each_chunk_holds_the_text_of_exactly_one_section() -> None:
    chunks = chunk_document(doc(ARTICLE))

    assert chunks[1].text.startswith("Leve um documento")
    assert "CNPJ" not in chunks[1].text
    assert chunks[2].text.startswith("Contrato social")
    assert "imediata" not in chunks[2].text


def test_h1_repeating_the_title_is_not_part_of_the_section_path() -> None:
    chunks = chunk_document(doc("# Segunda via do IPTU\n\nAbertura.\n\n## Valor\n\nGratuita.\n"))

    assert [(c.section, c.text) for c in chunks] == [("", "Abertura."), ("Valor", "Gratuita.")]


def test_leading_h1_worded_differently_from_the_title_stays_in_the_path() -> None:
    chunks = chunk_document(doc("# Como emitir\n\n## Valor\n\nGratuita.\n"))

    assert [c.section for c in chunks] == ["Como emitir > Valor"]


def test_several_h1_sections_are_part_of_the_path() -> None:
    text = "# Férias\n\n## Pedido\n\nNo sistema.\n\n# Licenças\n\nCom atestado.\n"

    chunks = chunk_document(doc(text, title="Manual do Servidor"))

    assert [c.section for c in chunks] == ["Férias > Pedido", "Licenças"]


def test_h5_and_h6_headings_stay_inside_the_section_text() -> None:
    chunks = chunk_document(doc("## Prazo\n\n##### Atenção\n\nSó em dias úteis.\n"))

    assert [(c.section, c.text) for c in chunks] == [("Prazo", "Atenção\n\nSó em dias úteis.")]


def test_headings_without_text_produce_no_chunks() -> None:
    chunks = chunk_document(doc("## Vazia\n\n## Outra\n\nConteúdo.\n"))

    assert [c.section for c in chunks] == ["Outra"]


# --------------------------------------------------------------------------- tiny sections


def test_tiny_sibling_sections_stay_separate_chunks() -> None:
    chunks = chunk_document(doc("## Horário\n\nDas 8h às 17h.\n\n## Endereço\n\nPraça da Matriz, 100.\n"))

    assert [(c.section, c.text) for c in chunks] == [
        ("Horário", "Das 8h às 17h."),
        ("Endereço", "Praça da Matriz, 100."),
    ]


def test_tiny_lead_in_ending_with_colon_joins_its_first_subsection() -> None:
    text = (
        "## Documentos\n\nVocê vai precisar de:\n\n### Pessoa física\n\n- RG\n- CPF\n\n### Pessoa jurídica\n\n- CNPJ\n"
    )

    chunks = chunk_document(doc(text))

    assert [(c.section, c.text) for c in chunks] == [
        ("Documentos > Pessoa física", "Você vai precisar de:\n\n- RG\n- CPF"),
        ("Documentos > Pessoa jurídica", "- CNPJ"),
    ]


def test_tiny_section_with_its_own_content_is_not_merged_into_a_subsection() -> None:
    text = "## Como pedir\n\nPelo portal.\n\n### Prazos\n\nImediato.\n"

    chunks = chunk_document(doc(text))

    assert [(c.section, c.text) for c in chunks] == [
        ("Como pedir", "Pelo portal."),
        ("Como pedir > Prazos", "Imediato."),
    ]


# --------------------------------------------------------------------------- splitting


def test_long_section_is_split_on_paragraph_boundaries_first() -> None:
    paragraphs = [" ".join(sentence(p * 10 + i) for i in range(4)) for p in range(4)]
    text = "## Regras\n\n" + "\n\n".join(paragraphs)

    chunks = chunk_document(doc(text), max_chars=700)

    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]
    assert all(c.section == "Regras" for c in chunks)


def test_long_paragraph_is_split_on_sentences_repeating_one_as_overlap() -> None:
    sentences = [sentence(i) for i in range(12)]
    text = " ".join(sentences)

    chunks = chunk_document(doc(text), max_chars=300)

    assert all(len(c.text) <= 300 for c in chunks)
    pieces = [split_sentences(c.text) for c in chunks]
    for before, after in itertools.pairwise(pieces):
        assert after[0] == before[-1]
    rebuilt = pieces[0] + [s for p in pieces[1:] for s in p[1:]]
    assert rebuilt == sentences


def test_overlap_can_be_turned_off() -> None:
    sentences = [sentence(i) for i in range(12)]

    chunks = chunk_document(doc(" ".join(sentences)), max_chars=300, overlap_sentences=0)

    assert [s for c in chunks for s in split_sentences(c.text)] == sentences


@pytest.mark.parametrize("max_chars", [60, 150, 333, 900])
def test_chunks_respect_max_chars_and_never_cut_a_word(max_chars: int) -> None:
    rng = random.Random(max_chars)
    vocabulary = ["imposto", "cidadão", "prefeitura", "atendimento", "certidão", "boleto", "protocolo"]
    paragraphs = []
    for _ in range(8):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(5, 120))]
        paragraphs.append(" ".join(words).capitalize() + ".")
    text = "## Seção\n\n" + "\n\n".join(paragraphs) + "\n\n- " + "\n- ".join(vocabulary)

    chunks = chunk_document(doc(text), max_chars=max_chars)

    allowed = set(vocabulary) | {w.capitalize() for w in vocabulary} | {"-"}
    for chunk in chunks:
        assert len(chunk.text) <= max_chars
        assert set(re.sub(r"[.]", "", chunk.text).split()) <= allowed


def test_a_word_longer_than_max_chars_becomes_its_own_oversized_chunk() -> None:
    url = "https://www.santaaurora.sp.gov.br/" + "servicos/" * 12
    chunks = chunk_document(doc(f"Acesse {url} para emitir."), max_chars=40, overlap_sentences=0)

    assert [c.text for c in chunks] == ["Acesse", url, "para emitir."]


def test_code_blocks_are_kept_verbatim() -> None:
    chunks = chunk_document(doc("## Exemplo\n\n```\nlinha 1\n  linha 2\n```\n"))

    assert chunks[0].text == "linha 1\n  linha 2"


# --------------------------------------------------------------------------- sentences


def test_sentence_splitter_keeps_portuguese_abbreviations_together() -> None:
    text = 'Conforme o Art. 5º da Lei, o Sr. Silva foi atendido. O prazo é de 30 dias! "Nova frase" aqui.'

    assert split_sentences(text) == [
        "Conforme o Art. 5º da Lei, o Sr. Silva foi atendido.",
        "O prazo é de 30 dias!",
        '"Nova frase" aqui.',
    ]


def test_sentence_splitter_does_not_split_before_lowercase_or_initialisms() -> None:
    text = "A empresa X S.A. Ltda. recebeu. e continuou. Fim."

    assert split_sentences(text) == ["A empresa X S.A. Ltda. recebeu. e continuou.", "Fim."]


# --------------------------------------------------------------------------- cleaning


def test_markdown_noise_is_stripped_but_list_items_keep_their_lines() -> None:
    text = (
        "## Como pagar\n\n"
        "O pagamento é **obrigatório** e _anual_, veja [o calendário](calendario.md).\n\n"
        "- **Pix**, pelo QR Code;\n"
        "- `boleto` bancário;\n"
        "  - em agências.\n\n"
        "1. Primeiro\n"
        "2. Segundo\n"
    )

    chunk = chunk_document(doc(text))[0]

    assert chunk.text == (
        "O pagamento é obrigatório e anual, veja o calendário.\n\n"
        "- Pix, pelo QR Code;\n"
        "- boleto bancário;\n"
        "  - em agências.\n\n"
        "1. Primeiro\n"
        "2. Segundo"
    )


def test_absolute_link_targets_are_kept_because_the_address_is_often_the_answer() -> None:
    text = (
        "Emita no [Portal do Contribuinte](https://www.santaaurora.sp.gov.br/contribuinte) "
        "ou escreva para [nós](mailto:tributos@santaaurora.sp.gov.br)."
    )

    chunk = chunk_document(doc(text))[0]

    assert chunk.text == (
        "Emita no Portal do Contribuinte (https://www.santaaurora.sp.gov.br/contribuinte) "
        "ou escreva para nós (tributos@santaaurora.sp.gov.br)."
    )


def test_tables_become_one_row_per_line() -> None:
    text = "## Descontos\n\n| Pagamento | Desconto |\n|---|---|\n| Cota única | 10% |\n| Parcelado | 0% |\n"

    chunk = chunk_document(doc(text))[0]

    assert chunk.text == "Pagamento | Desconto\nCota única | 10%\nParcelado | 0%"


def test_raw_html_blocks_keep_only_their_text() -> None:
    chunk = chunk_document(doc('<div class="alerta">Atenção: <b>golpe</b> do boleto</div>\n'))[0]

    assert chunk.text == "Atenção: golpe do boleto"


def test_plain_text_from_a_txt_file_comes_back_verbatim(tmp_path: Path) -> None:
    original = "Aviso\n\n# não é título\n\nDigite <seu CPF> e use *123# no celular; C:\\pasta_nova [1]."
    path = tmp_path / "aviso.txt"
    path.write_text(original, encoding="utf-8")

    chunks = chunk_document(load_document(path))

    assert [c.section for c in chunks] == [""]
    assert chunks[0].text == original


def test_portuguese_accents_are_preserved() -> None:
    text = "## Isenção\n\nAposentados e pensionistas com renda até três salários mínimos têm isenção."

    chunk = chunk_document(doc(text))[0]

    assert chunk.section == "Isenção"
    assert "três salários mínimos têm isenção" in chunk.text


# --------------------------------------------------------------------------- identity and metadata


def test_chunk_ids_are_deterministic_and_positional() -> None:
    first = chunk_document(doc(ARTICLE))
    second = chunk_document(doc(ARTICLE))

    assert first == second
    assert [c.id for c in first] == ["artigo#0", "artigo#1", "artigo#2", "artigo#3"]
    assert [c.position for c in first] == [0, 1, 2, 3]


def test_chunks_copy_document_metadata_and_hash() -> None:
    document = doc(ARTICLE, source="tributos/iptu.md", url="kb://articles/artigo")

    for chunk in chunk_document(document):
        assert chunk.doc_id == "artigo"
        assert chunk.title == "Segunda via do IPTU"
        assert chunk.source == "tributos/iptu.md"
        assert chunk.url == "kb://articles/artigo"
        assert chunk.doc_hash == document.hash


def test_internal_audience_propagates_to_every_chunk() -> None:
    chunks = chunk_document(doc(ARTICLE, audience="internal"))

    assert chunks
    assert {c.audience for c in chunks} == {"internal"}


def test_chunk_documents_keeps_document_order() -> None:
    chunks = chunk_documents([doc("Primeiro.", id="a"), doc("Segundo.", id="b")])

    assert [c.id for c in chunks] == ["a#0", "b#0"]


def test_nonpositive_max_chars_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_document(doc("Texto."), max_chars=0)


def test_markdown_hard_line_breaks_stay_line_breaks() -> None:
    chunk = chunk_document(doc("## Endereço\n\nPraça da Matriz, 100  \nCentro\n"))[0]

    assert chunk.text == "Praça da Matriz, 100\nCentro"


def test_a_table_cut_across_chunks_repeats_its_header_row() -> None:
    rows = "".join(f"| UBS {n} | Rua {n}, número {n * 10} | das 7h às 17h |\n" for n in range(12))
    text = "## Unidades\n\n| Unidade | Endereço | Horário |\n|---|---|---|\n" + rows

    chunks = chunk_document(doc(text), max_chars=300)

    assert len(chunks) > 1
    assert all(c.text.startswith("Unidade | Endereço | Horário\n") for c in chunks)
    assert all(len(c.text) <= 300 for c in chunks)
    body_rows = [line for c in chunks for line in c.text.splitlines()[1:]]
    assert body_rows == [f"UBS {n} | Rua {n}, número {n * 10} | das 7h às 17h" for n in range(12)]


def test_a_lead_in_is_kept_with_the_list_it_introduces() -> None:
    intro = " ".join(sentence(i) for i in range(6))
    steps = "\n".join(f"- passo {n} do pedido no portal da prefeitura" for n in range(5))
    text = f"## Pedido\n\n{intro}\n\nNo dia do atendimento:\n\n{steps}\n"

    chunks = chunk_document(doc(text), max_chars=600)

    assert [c.text.startswith("No dia do atendimento:\n\n- passo 0") for c in chunks] == [False, True]

"""How answers look on WhatsApp: its markup, the 4,096-character limit, short links and interactive limits."""

from __future__ import annotations

import pytest

from channels.whatsapp.formatting import (
    MAX_TEXT,
    Button,
    InteractiveLimitError,
    Row,
    answer_bodies,
    buttons_body,
    list_body,
    short_link,
    split_text,
    to_whatsapp,
)

BASE = "https://atende.example.gov.br"


def test_markdown_becomes_whatsapp_markup() -> None:
    markdown = (
        "## Documentos\n\n**Leve** o *RG* e ~~o título~~.\n- CPF\n  * comprovante\n[Portal](https://portal.gov.br)"
    )
    assert to_whatsapp(markdown) == (
        "*Documentos*\n\n*Leve* o _RG_ e ~o título~.\n• CPF\n  • comprovante\nPortal (https://portal.gov.br)"
    )


def test_arithmetic_asterisks_are_not_taken_for_italics() -> None:
    assert to_whatsapp("Calcule 2*3*4 reais") == "Calcule 2*3*4 reais"


def test_a_long_answer_is_split_at_sentence_breaks_within_the_limit() -> None:
    sentence = "O IPTU pode ser pago em até dez parcelas mensais sem juros. "
    text = sentence * 200  # about 12,000 characters
    parts = split_text(text)
    assert len(parts) == 3
    assert all(len(p) <= MAX_TEXT for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts) == text.strip()


def test_paragraph_breaks_are_preferred_over_sentence_breaks() -> None:
    first = "Primeiro parágrafo. " * 150
    second = "Segundo parágrafo. " * 150
    parts = split_text(f"{first.strip()}\n\n{second.strip()}")
    assert parts == [first.strip(), second.strip()]


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    parts = split_text("x" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_knowledge_citations_become_public_article_links() -> None:
    assert short_link("kb://articles/iptu-segunda-via", BASE + "/") == f"{BASE}/kb/iptu-segunda-via"
    assert short_link("/kb/alvara", BASE) == f"{BASE}/kb/alvara"
    assert short_link("https://www.gov.br/x", BASE) == "https://www.gov.br/x"


def test_an_answer_carries_its_sources_as_short_links() -> None:
    citations = [{"n": 1, "doc_id": "iptu", "title": "IPTU", "url": "kb://articles/iptu"}]
    [body] = answer_bodies("O **boleto** sai no portal [1].", citations, base_url=BASE, sources_heading="Fontes")
    assert body["type"] == "text"
    assert body["text"]["body"] == f"O *boleto* sai no portal [1].\n\n*Fontes:*\n[1] IPTU: {BASE}/kb/iptu"
    assert body["text"]["preview_url"] is False


def test_an_offer_of_a_person_rides_on_the_last_message_as_a_button() -> None:
    offer = Button("atende:handoff", "Falar com atendente")
    bodies = answer_bodies("Não sei.", [], base_url=BASE, sources_heading="Fontes", offer=offer, offer_prompt="?")
    [body] = bodies
    assert body["interactive"]["type"] == "button"
    assert body["interactive"]["body"]["text"] == "Não sei."
    assert body["interactive"]["action"]["buttons"][0]["reply"] == {
        "id": "atende:handoff",
        "title": "Falar com atendente",
    }


def test_an_offer_after_a_long_answer_comes_as_its_own_message() -> None:
    offer = Button("atende:handoff", "Falar com atendente")
    long_answer = "Frase longa sobre o serviço público. " * 60
    bodies = answer_bodies(long_answer, [], base_url=BASE, sources_heading="F", offer=offer, offer_prompt="Quer ajuda?")
    assert [b["type"] for b in bodies] == ["text", "interactive"]
    assert bodies[1]["interactive"]["body"]["text"] == "Quer ajuda?"


def test_button_messages_allow_at_most_three_short_distinct_buttons() -> None:
    three = [Button(f"b{i}", f"Opção {i}") for i in range(3)]
    assert len(buttons_body("Escolha", three)["interactive"]["action"]["buttons"]) == 3
    with pytest.raises(InteractiveLimitError):
        buttons_body("Escolha", [*three, Button("b3", "Outra")])
    with pytest.raises(InteractiveLimitError):
        buttons_body("Escolha", [Button("b", "Um título longo demais aqui")])
    with pytest.raises(InteractiveLimitError):
        buttons_body("Escolha", [Button("b", "Um"), Button("b", "Dois")])
    with pytest.raises(InteractiveLimitError):
        buttons_body("x" * 1025, three)


def test_lists_allow_up_to_ten_rows_within_their_length_limits() -> None:
    ten = [Row(f"r{i}", f"Assunto {i}", "descrição") for i in range(10)]
    body = list_body("Escolha um assunto", "Ver assuntos", ten, "Assuntos")
    assert len(body["interactive"]["action"]["sections"][0]["rows"]) == 10
    assert body["interactive"]["action"]["button"] == "Ver assuntos"
    with pytest.raises(InteractiveLimitError):
        list_body("Escolha", "Ver", [*ten, Row("r10", "Mais um")])
    with pytest.raises(InteractiveLimitError):
        list_body("Escolha", "Ver", [Row("r", "x" * 25)])
    with pytest.raises(InteractiveLimitError):
        list_body("Escolha", "Ver", [Row("r", "ok", "d" * 73)])
    with pytest.raises(InteractiveLimitError):
        list_body("Escolha", "Um rótulo de botão longo", [Row("r", "ok")])

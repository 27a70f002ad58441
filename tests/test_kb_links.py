"""A citation links to the exact passages the answer used, and the article page marks them."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from assistant.service import Citation
from atende.app import create_app
from atende.services import Services
from channels.kb_links import (
    MAX_KEY_CHARS,
    MAX_QUOTES,
    article_link,
    article_parser,
    keys_from_query,
    mark_passages,
    quote_key,
)
from channels.whatsapp.formatting import sources_block
from core.security_headers import style_hash

IPTU = "kb://articles/iptu-segunda-via"
# Passages of knowledge/iptu-segunda-via.md, as the answer composer quotes them (Markdown source).
PIX_ITEM = "**Pix**, lendo o QR Code impresso no boleto (compensação em poucos minutos);"
PORTAL_STEP = (
    '1. **Pelo portal:** acesse `https://www.santaaurora.sp.gov.br/contribuinte`, clique em **"IPTU – Emitir '
    'segunda via"**, informe a inscrição imobiliária ou o CPF/CNPJ e escolha a parcela ou a cota única.'
)
LATE_SENTENCE = (
    "Quando a parcela já está vencida, o sistema recalcula o valor com multa de 2% e juros de 1% ao mês, e o boleto "
    "atualizado vale até o último dia útil do mês em que foi emitido."
)
BENEFICIARY_ITEM = (
    '- Confira sempre se o beneficiário do boleto é "Prefeitura Municipal de Santa Aurora" antes de pagar.'
)

ARTICLE = """# Taxas

Primeira frase do parágrafo. A **emissão** é *imediata* e sem custo.

## Quem pode solicitar

- Pelo [Portal do Contribuinte](https://portal.example.gov.br), com `CPF` ou CNPJ;
  - subitem aninhado com outra informação
- pelo telefone 156.

| Forma | Prazo |
|---|---|
| Pix | na hora |
| Boleto | até 3 dias úteis |

Pelo telefone 156 também se emite o boleto.
"""


class _Marked(HTMLParser):
    """The marked blocks of a page (tag, id, text), and the text inside <mark> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[list[str]] = []
        self.open: list[list[str] | None] = []
        self.marks: list[str] = []
        self.in_mark = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "mark":
            self.in_mark += 1
            self.marks.append("")
        if "trecho" in (found.get("class") or "").split():
            block = [tag, found.get("id") or "", ""]
            self.blocks.append(block)
            self.open.append(block)
        elif tag not in ("br", "img", "mark"):
            self.open.append(None)

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self.in_mark -= 1
        elif self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for block in self.open:
            if block is not None:
                block[2] += data
        if self.in_mark:
            self.marks[-1] += data


def marked_in(html: str) -> _Marked:
    parser = _Marked()
    parser.feed(html)
    return parser


def render_marked(markdown: str, link: str) -> _Marked:
    """The article rendered as the page renders it, marked for the `trecho` values of `link`."""
    md = article_parser()
    tokens = md.parse(markdown, {})
    mark_passages(tokens, keys_from_query(parse_qs(urlsplit(link).query).get("trecho", [])))
    return marked_in(md.renderer.render(tokens, md.options, {}))


# The link


def test_a_cited_article_links_to_its_page_with_one_key_per_quoted_passage() -> None:
    link = article_link(IPTU, [PIX_ITEM, LATE_SENTENCE])

    assert link == (
        "/kb/iptu-segunda-via?trecho=pix-lendo-o-qr-code-impresso&trecho=quando-a-parcela-ja-esta-vencida#trecho"
    )


def test_a_key_is_the_first_words_a_reader_sees_without_markup_accents_or_list_markers() -> None:
    assert quote_key(PORTAL_STEP) == "pelo-portal-acesse-https-www-santaaurora"
    assert quote_key("- **Atenção:** a emissão é GRATUITA.") == "atencao-a-emissao-e-gratuita"
    assert quote_key("Veja o [Portal do Contribuinte](https://x.gov.br).") == "veja-o-portal-do-contribuinte-https"
    assert quote_key("| Pix | na hora |") == "pix-na-hora"


def test_without_quotes_the_link_is_the_plain_article_page_and_external_sources_keep_their_address() -> None:
    assert article_link(IPTU) == "/kb/iptu-segunda-via"
    assert article_link(IPTU, ["**", "---", ""]) == "/kb/iptu-segunda-via"
    assert article_link("https://www.gov.br/servico", [PIX_ITEM]) == "https://www.gov.br/servico"


def test_a_link_keeps_at_most_four_distinct_keys_and_stays_short() -> None:
    quotes = [PIX_ITEM, PIX_ITEM, PORTAL_STEP, LATE_SENTENCE, BENEFICIARY_ITEM, "Outra frase qualquer do artigo."]

    link = article_link(IPTU, quotes)

    assert parse_qs(urlsplit(link).query)["trecho"] == [
        quote_key(PIX_ITEM),
        quote_key(PORTAL_STEP),
        quote_key(LATE_SENTENCE),
        quote_key(BENEFICIARY_ITEM),
    ]
    assert MAX_QUOTES == 4
    assert len(link) < 200


def test_whatsapp_sources_point_at_the_quoted_passages() -> None:
    citations = [{"n": 1, "title": "IPTU", "url": IPTU, "quotes": [PIX_ITEM]}, {"n": 2, "title": "X", "url": "x"}]

    block = sources_block(citations, "https://atende.example.gov.br", "Fontes")

    assert block == (
        "*Fontes:*\n"
        "[1] IPTU: https://atende.example.gov.br/kb/iptu-segunda-via?trecho=pix-lendo-o-qr-code-impresso#trecho\n"
        "[2] X: x"
    )


# The marking


def test_a_sentence_marks_its_paragraph_whatever_the_accents_case_and_bold() -> None:
    page = render_marked(ARTICLE, "/kb/x?trecho=A-EMISSAO-é-imediata")

    assert page.blocks == [["p", "trecho", "Primeira frase do parágrafo. A emissão é imediata e sem custo."]]
    assert page.marks == ["Primeira frase do parágrafo. A emissão é imediata e sem custo."]


def test_a_list_item_with_a_link_and_code_is_marked_but_not_its_nested_item() -> None:
    quote = "- Pelo [Portal do Contribuinte](https://portal.example.gov.br), com `CPF` ou CNPJ;"

    page = render_marked(ARTICLE, article_link(IPTU, [quote]))

    [(tag, anchor, text)] = page.blocks
    assert (tag, anchor) == ("li", "trecho")
    assert text.startswith("Pelo Portal do Contribuinte, com CPF ou CNPJ;")
    assert page.marks == ["Pelo Portal do Contribuinte, com CPF ou CNPJ;"]


def test_a_table_row_is_marked_as_a_row() -> None:
    page = render_marked(ARTICLE, article_link(IPTU, ["| Boleto | até 3 dias úteis |"]))

    assert [(tag, anchor) for tag, anchor, _ in page.blocks] == [("tr", "trecho")]
    assert page.marks == ["Boleto", "até 3 dias úteis"]


def test_only_the_first_marked_block_carries_the_anchor() -> None:
    link = article_link(IPTU, ["| Pix | na hora |", "Primeira frase do parágrafo."])

    page = render_marked(ARTICLE, link)

    assert [(tag, anchor) for tag, anchor, _ in page.blocks] == [("p", "trecho"), ("tr", "")]


RANKED = """Diz a norma que a emissão é imediata e sem custo.

Primeira frase. A emissão é imediata e sem custo.

- Sem custo.
"""


@pytest.mark.parametrize(
    ("quote", "marked"),
    [
        ("- Sem custo.", "Sem custo."),
        ("A emissão é imediata e sem custo.", "Primeira frase. A emissão é imediata e sem custo."),
        ("que a emissão é imediata", "Diz a norma que a emissão é imediata e sem custo."),
    ],
)
def test_a_key_points_at_a_block_it_starts_before_a_sentence_it_starts_before_words_in_mid_sentence(
    quote: str, marked: str
) -> None:
    page = render_marked(RANKED, article_link(IPTU, [quote]))

    assert [text for _, _, text in page.blocks] == [marked]


def test_headings_are_not_passages() -> None:
    page = render_marked(ARTICLE, "/kb/x?trecho=quem-pode-solicitar")

    assert page.blocks == []
    assert page.marks == []


@pytest.mark.parametrize(
    "garbage",
    ["", "-", "---", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "x" * 5000, "\x00\ufffd", "🙂"],
)
def test_garbage_keys_mark_nothing(garbage: str) -> None:
    assert render_marked(ARTICLE, "/kb/x?" + "&".join(["trecho=" + garbage] * 10)).blocks == []


def test_only_the_first_four_keys_of_a_request_are_read_and_oversized_ones_are_dropped() -> None:
    keys = keys_from_query(["um", "dois", "um", "tres", "quatro", "cinco"])
    oversized = keys_from_query(["sem-custo-" * (MAX_KEY_CHARS // 10 + 1), "sem-custo"])

    assert keys == [("um",), ("dois",), ("tres",)]
    assert oversized == [("sem", "custo")]


# The page


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services, warm_model=False)) as test_client:
        yield test_client


def test_the_article_page_marks_the_quoted_passages_and_anchors_the_first(client: TestClient) -> None:
    response = client.get(article_link(IPTU, [LATE_SENTENCE, PIX_ITEM, PORTAL_STEP]))

    assert response.status_code == 200
    page = marked_in(response.text)
    assert [(tag, anchor) for tag, anchor, _ in page.blocks] == [("li", "trecho"), ("p", ""), ("li", "")]
    assert page.blocks[0][2].startswith("Pelo portal: acesse https://www.santaaurora.sp.gov.br/contribuinte")
    assert page.blocks[1][2].startswith("A emissão é imediata. Quando a parcela já está vencida")
    assert page.blocks[2][2].startswith("Pix, lendo o QR Code")
    assert response.text.count('id="trecho"') == 1


def test_the_web_chat_links_a_stored_citation_to_its_quoted_passages(services: Services) -> None:
    citation = Citation(
        1, "iptu-segunda-via", "Segunda via do boleto do IPTU", "Formas de pagamento", IPTU, (PIX_ITEM,)
    )
    # https: the chat key cookie is Secure, and the client keeps it only there.
    with TestClient(create_app(services=services, warm_model=False), base_url="https://testserver") as https:
        cid = https.post("/api/conversations").json()["id"]
        services.store.add_message(cid, "assistant", "Pague com Pix [1].", "answered", [citation.as_dict()])
        [message] = https.get(f"/api/conversations/{cid}").json()["messages"]

    assert citation.as_dict()["quotes"] == [PIX_ITEM]
    assert message["citations"] == [
        {
            "n": 1,
            "doc_id": "iptu-segunda-via",
            "title": "Segunda via do boleto do IPTU",
            "section": "Formas de pagamento",
            "url": "/kb/iptu-segunda-via?trecho=pix-lendo-o-qr-code-impresso#trecho",
        }
    ]


def test_the_article_page_says_when_it_was_updated(client: TestClient) -> None:
    assert "Atualizado em 02/03/2026" in client.get("/kb/iptu-segunda-via").text


def test_the_marked_page_keeps_the_one_inline_style_its_policy_allows(client: TestClient) -> None:
    response = client.get(article_link(IPTU, [PIX_ITEM]))

    style = response.text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert style_hash(style) in response.headers["content-security-policy"]
    assert "<script" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        "trecho=%3Cscript%3Ealert(1)%3C/script%3E",
        "trecho=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "trecho=" + "a" * 10_000,
        "trecho=%00%FF%FE",
        "trecho=&trecho=&trecho=",
        "trecho=" + "&trecho=".join(["x"] * 200),
    ],
)
def test_garbage_passages_are_ignored_and_never_written_into_the_page(client: TestClient, query: str) -> None:
    plain = client.get("/kb/iptu-segunda-via")

    response = client.get(f"/kb/iptu-segunda-via?{query}")

    assert response.status_code == 200
    assert response.text == plain.text
    assert "onerror" not in response.text
    assert "alert" not in response.text

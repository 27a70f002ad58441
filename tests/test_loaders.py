from __future__ import annotations

import pickle
import textwrap
import unicodedata
from pathlib import Path

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from reportlab.pdfgen import canvas

from rag.loaders import LoaderError, collect_directory, load_directory, load_document


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    pdf = canvas.Canvas(str(path))
    if title is not None:
        pdf.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 18
        pdf.showPage()
    pdf.save()
    return path


MARKDOWN_ARTICLE = """
---
id: iptu-segunda-via
title: Segunda via do IPTU
audience: internal
team: tributos
tags: [iptu, boleto]
updated_at: 2026-03-02
url: https://www.santaaurora.sp.gov.br/iptu
---

Introdução sobre o imposto.

## Onde solicitar

No portal da Prefeitura.
"""


# --------------------------------------------------------------------------- Markdown


def test_markdown_front_matter_becomes_document_metadata(tmp_path: Path) -> None:
    path = write(tmp_path / "iptu.md", MARKDOWN_ARTICLE)

    doc = load_document(path, tmp_path)

    assert doc.id == "iptu-segunda-via"
    assert doc.title == "Segunda via do IPTU"
    assert doc.audience == "internal"
    assert doc.team == "tributos"
    assert doc.tags == ("iptu", "boleto")
    assert doc.updated_at == "2026-03-02"
    assert doc.url == "https://www.santaaurora.sp.gov.br/iptu"
    assert doc.source == "iptu.md"


def test_markdown_body_keeps_headings_and_drops_front_matter(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "iptu.md", MARKDOWN_ARTICLE))

    assert doc.text == "Introdução sobre o imposto.\n\n## Onde solicitar\n\nNo portal da Prefeitura."


def test_markdown_without_front_matter_takes_id_from_stem_and_title_from_first_h1(tmp_path: Path) -> None:
    path = write(tmp_path / "zona-azul.md", "Texto antes.\n\n## Seção\n\n# Estacionamento **rotativo**\n")

    doc = load_document(path)

    assert doc.id == "zona-azul"
    assert doc.title == "Estacionamento rotativo"
    assert doc.audience == "public"
    assert doc.tags == ()
    assert doc.updated_at == ""


def test_markdown_without_heading_or_title_uses_the_file_stem(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "taxa-de-lixo.md", "Só um parágrafo.\n"))

    assert doc.title == "taxa-de-lixo"


def test_missing_url_defaults_to_a_knowledge_base_address(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "itbi.md", "---\nid: itbi\n---\nTexto.\n"))

    assert doc.url == "kb://articles/itbi"


def test_datetime_updated_at_becomes_an_iso_string(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "---\nupdated_at: 2025-01-31T10:30:00\n---\nTexto.\n")

    assert load_document(path).updated_at == "2025-01-31T10:30:00"


def test_misspelled_metadata_field_is_rejected_so_internal_text_cannot_leak(tmp_path: Path) -> None:
    path = write(tmp_path / "manual.md", "---\naudiance: internal\n---\nProcedimento interno.\n")

    with pytest.raises(LoaderError, match="audiance") as caught:
        load_document(path)
    assert caught.value.path == path


def test_audience_other_than_public_or_internal_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "---\naudience: servidores\n---\nTexto.\n")

    with pytest.raises(LoaderError, match="audience must be"):
        load_document(path)


def test_updated_at_that_is_not_an_iso_date_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "---\nupdated_at: março de 2024\n---\nTexto.\n")

    with pytest.raises(LoaderError, match="ISO date"):
        load_document(path)


def test_invalid_front_matter_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "quebrado.md", "---\ntitle: [sem fechar\n---\nTexto.\n")

    with pytest.raises(LoaderError, match=r"quebrado\.md"):
        load_document(path)


def test_id_containing_hash_is_rejected_because_chunk_ids_use_it(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "---\nid: 'faq#1'\n---\nTexto.\n")

    with pytest.raises(LoaderError, match="must not contain '#'"):
        load_document(path)


def test_article_without_text_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "vazio.md", "---\ntitle: Vazio\n---\n\n")

    with pytest.raises(LoaderError, match="no text"):
        load_document(path)


# --------------------------------------------------------------------------- HTML

HTML_PAGE = """
<!doctype html>
<html lang="pt-BR">
<head>
  <meta charset="utf-8">
  <title>Emissão de Certidão</title>
  <meta name="atende:id" content="certidao-negativa">
  <meta name="atende:audience" content="internal">
  <meta name="atende:team" content="fazenda">
  <meta name="atende:tags" content="certidão, tributos">
  <style>p { color: red }</style>
  <script>var segredo = "não indexar";</script>
</head>
<body>
  <nav><a href="/">Início</a> | <a href="/servicos">Serviços</a></nav>
  <h1>Emissão de Certidão</h1>
  <p>A certidão é <strong>gratuita</strong> e sai na hora.</p>
  <h2>Como pedir</h2>
  <ol>
    <li>Acesse o <a href="https://portal.santaaurora.sp.gov.br/certidao">portal</a>;</li>
    <li>Informe o CPF.</li>
  </ol>
  <h3>Prazos</h3>
  <table>
    <tr><th>Serviço</th><th>Prazo</th></tr>
    <tr><td>Certidão</td><td>Imediato</td></tr>
  </table>
  <h5>Nota</h5>
  <p>Digite &lt;seu CPF&gt; sem pontos.</p>
  <footer>Prefeitura de Santa Aurora © 2026</footer>
</body>
</html>
"""


def test_html_page_becomes_markdown_without_scripts_styles_nav_or_footer(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "certidao.html", HTML_PAGE), tmp_path)

    assert doc.title == "Emissão de Certidão"
    assert doc.text.splitlines() == [
        "# Emissão de Certidão",
        "",
        "A certidão é gratuita e sai na hora.",
        "",
        "## Como pedir",
        "",
        "1. Acesse o portal (https://portal.santaaurora.sp.gov.br/certidao);",
        "2. Informe o CPF.",
        "",
        "### Prazos",
        "",
        "| Serviço | Prazo |",
        "| --- | --- |",
        "| Certidão | Imediato |",
        "",
        "Nota",
        "",
        r"Digite \<seu CPF> sem pontos.",
    ]
    for chrome in ("segredo", "color", "Início", "©"):
        assert chrome not in doc.text


def test_html_meta_tags_supply_metadata(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "certidao.html", HTML_PAGE))

    assert doc.id == "certidao-negativa"
    assert doc.audience == "internal"
    assert doc.team == "fazenda"
    assert doc.tags == ("certidão", "tributos")


def test_html_without_title_element_takes_title_from_first_h1(tmp_path: Path) -> None:
    page = "<html><body><h1>Coleta seletiva</h1><p>Às terças.</p></body></html>"
    path = write(tmp_path / "pagina.htm", page)

    doc = load_document(path)

    assert doc.id == "pagina"
    assert doc.title == "Coleta seletiva"


def test_html_with_a_single_main_element_ignores_the_surrounding_site(tmp_path: Path) -> None:
    page = "<body><div>Menu do portal</div><main><h1>Zona Azul</h1><p>Duas horas.</p></main></body>"

    doc = load_document(write(tmp_path / "zona.html", page))

    assert doc.text == "# Zona Azul\n\nDuas horas."


def test_html_declared_latin1_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "antigo.html"
    page = '<html><head><meta charset="iso-8859-1"><title>Informação</title></head><body><p>Coração</p></body></html>'
    path.write_bytes(page.encode("latin-1"))

    doc = load_document(path)

    assert (doc.title, doc.text) == ("Informação", "Coração")


def test_nested_html_lists_are_indented_under_their_item(tmp_path: Path) -> None:
    page = "<body><ul><li>Documentos<ul><li>RG</li><li>CPF</li></ul></li><li>Taxa</li></ul></body>"

    doc = load_document(write(tmp_path / "lista.html", page))

    assert doc.text == "- Documentos\n  - RG\n  - CPF\n- Taxa"


# --------------------------------------------------------------------------- PDF


def test_pdf_text_of_all_pages_is_loaded_with_title_from_metadata(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "guia-alvara.pdf",
        [["Alvará de funcionamento", "O pedido é feito pela internet."], ["Página dois: vistoria."]],
        title="Guia do Alvará",
    )

    doc = load_document(path, tmp_path)

    assert doc.id == "guia-alvara"
    assert doc.title == "Guia do Alvará"
    assert "O pedido é feito pela internet." in doc.text
    assert "Página dois: vistoria." in doc.text
    assert doc.source == "guia-alvara.pdf"


def test_pdf_with_placeholder_metadata_title_uses_first_line(tmp_path: Path) -> None:
    # reportlab, like many producers, writes "untitled" when no title is set.
    path = make_pdf(tmp_path / "edital.pdf", [["", "Edital de Chamamento 2026", "Inscrições abertas."]])

    assert load_document(path).title == "Edital de Chamamento 2026"


def test_corrupt_pdf_raises_loader_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "quebrado.pdf"
    path.write_bytes(b"%PDF-1.4\nisto nao e um pdf de verdade\n")

    with pytest.raises(LoaderError) as caught:
        load_document(path)

    assert caught.value.path == path
    assert "quebrado.pdf" in str(caught.value)


def test_pdf_without_a_text_layer_is_reported_as_needing_ocr(tmp_path: Path) -> None:
    path = tmp_path / "digitalizado.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(72, 72, 200, 200)
    pdf.save()

    with pytest.raises(LoaderError, match="OCR"):
        load_document(path)


# --------------------------------------------------------------------------- DOCX


def make_docx(path: Path, title: str = "") -> Path:
    document = docx.Document()
    document.core_properties.title = title
    document.add_paragraph("Manual do Servidor", style="Title")
    document.add_paragraph("Introdução ao atendimento.")
    document.add_heading("Férias", level=1)
    document.add_paragraph("Regras gerais de férias.")
    document.styles.add_style("Título 2", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("Solicitação", style="Título 2")
    document.add_paragraph("Pelo sistema de RH.")
    document.add_paragraph("preencher o formulário", style="List Bullet")
    document.add_paragraph("aguardar a chefia", style="List Bullet")
    document.add_paragraph("abrir o sistema", style="List Number")
    document.add_paragraph("confirmar", style="List Number")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Pedido"
    table.cell(0, 1).text = "Prazo"
    table.cell(1, 0).text = "Férias"
    table.cell(1, 1).text = "30 dias"
    document.save(str(path))
    return path


def test_docx_heading_styles_become_markdown_headings(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "manual.docx"))

    assert doc.text.splitlines() == [
        "# Manual do Servidor",
        "",
        "Introdução ao atendimento.",
        "",
        "# Férias",
        "",
        "Regras gerais de férias.",
        "",
        "## Solicitação",
        "",
        "Pelo sistema de RH.",
        "",
        "- preencher o formulário",
        "- aguardar a chefia",
        "1. abrir o sistema",
        "2. confirmar",
        "",
        "| Pedido | Prazo |",
        "| --- | --- |",
        "| Férias | 30 dias |",
    ]


def test_docx_title_comes_from_first_heading_when_core_properties_are_empty(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "manual.docx"))

    assert (doc.id, doc.title) == ("manual", "Manual do Servidor")


def test_docx_title_comes_from_core_properties_when_set(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "manual.docx", title="Manual do Servidor 2026"))

    assert doc.title == "Manual do Servidor 2026"


def test_corrupt_docx_raises_loader_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "quebrado.docx"
    path.write_bytes(b"PK\x03\x04 nao e um docx")

    with pytest.raises(LoaderError, match=r"quebrado\.docx"):
        load_document(path)


# --------------------------------------------------------------------------- TXT


def test_txt_title_is_its_first_line_and_markdown_characters_are_escaped(tmp_path: Path) -> None:
    path = write(tmp_path / "aviso.txt", "Aviso de manutenção\n\n# Sistema fora do ar de 2*3*4 horas\n")

    doc = load_document(path)

    assert doc.title == "Aviso de manutenção"
    assert doc.text == "Aviso de manutenção\n\n\\# Sistema fora do ar de 2\\*3\\*4 horas"


def test_txt_typographic_bullets_become_list_items(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "docs.txt", "Documentos:\n• RG\n• CPF\n"))

    assert doc.text == "Documentos:\n- RG\n- CPF"


def test_txt_that_is_not_utf8_is_rejected_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "antigo.txt"
    path.write_bytes("Informação".encode("cp1252"))

    with pytest.raises(LoaderError, match="UTF-8"):
        load_document(path)


def test_unsupported_file_type_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "planilha.xlsx"
    path.write_bytes(b"")

    with pytest.raises(LoaderError, match="unsupported file type"):
        load_document(path)


# --------------------------------------------------------------------------- sidecars


def test_sidecar_supplies_metadata_for_a_non_markdown_file(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "manual.pdf", [["Manual interno", "Procedimentos."]], title="Manual")
    write(
        tmp_path / "manual.pdf.meta.yaml",
        """
        id: manual-interno
        title: Manual de procedimentos internos
        audience: internal
        team: atendimento
        tags: [procedimentos]
        url: https://intranet.santaaurora.sp.gov.br/manual
        """,
    )

    doc = load_document(pdf)

    assert doc.id == "manual-interno"
    assert doc.title == "Manual de procedimentos internos"
    assert doc.audience == "internal"
    assert doc.team == "atendimento"
    assert doc.tags == ("procedimentos",)
    assert doc.url == "https://intranet.santaaurora.sp.gov.br/manual"


def test_sidecar_overrides_html_meta_tags(tmp_path: Path) -> None:
    html = write(tmp_path / "certidao.html", HTML_PAGE)
    write(tmp_path / "certidao.html.meta.yaml", "audience: public\n")

    doc = load_document(html)

    assert doc.audience == "public"
    assert doc.id == "certidao-negativa"


def test_sidecar_next_to_a_markdown_file_is_rejected(tmp_path: Path) -> None:
    md = write(tmp_path / "a.md", "Texto.\n")
    write(tmp_path / "a.md.meta.yaml", "audience: internal\n")

    with pytest.raises(LoaderError, match="front matter"):
        load_document(md)


# --------------------------------------------------------------------------- directories


def test_load_directory_is_recursive_sorted_and_skips_top_readme_and_hidden_files(tmp_path: Path) -> None:
    write(tmp_path / "README.md", "# Como escrever artigos\n")
    write(tmp_path / "b.md", "Texto B.\n")
    write(tmp_path / "a.txt", "Texto A.\n")
    write(tmp_path / "sub" / "README.md", "Leia-me da pasta.\n")
    write(tmp_path / "sub" / "c.md", "Texto C.\n")
    write(tmp_path / ".oculto.md", "Não carregar.\n")
    write(tmp_path / ".git" / "d.md", "Não carregar.\n")
    write(tmp_path / "~$rascunho.md", "Arquivo de trava do Word.\n")

    docs = load_directory(tmp_path)

    assert [d.source for d in docs] == ["a.txt", "b.md", "sub/README.md", "sub/c.md"]


def test_files_of_unknown_types_are_skipped_not_failed(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "Texto.\n")
    (tmp_path / "foto.png").write_bytes(b"\x89PNG")

    report = collect_directory(tmp_path)

    assert [d.id for d in report.documents] == ["a"]
    assert report.ok
    assert report.skipped == [tmp_path / "foto.png"]


def test_duplicate_ids_raise_an_error_naming_both_files(tmp_path: Path) -> None:
    write(tmp_path / "iptu" / "faq.md", "Perguntas do IPTU.\n")
    write(tmp_path / "itbi" / "faq.md", "Perguntas do ITBI.\n")

    with pytest.raises(LoaderError, match="duplicate id 'faq'") as caught:
        load_directory(tmp_path)

    assert "iptu/faq.md" in str(caught.value)
    assert "itbi/faq.md" in str(caught.value)


def test_collect_directory_returns_good_documents_and_every_error(tmp_path: Path) -> None:
    write(tmp_path / "bom.md", "Texto bom.\n")
    (tmp_path / "quebrado.pdf").write_bytes(b"lixo")
    write(tmp_path / "ruim.md", "---\naudience: todos\n---\nTexto.\n")

    report = collect_directory(tmp_path)

    assert [d.id for d in report.documents] == ["bom"]
    assert sorted(e.path.name for e in report.errors) == ["quebrado.pdf", "ruim.md"]
    assert not report.ok


def test_load_directory_raises_the_first_error_and_notes_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"lixo")
    (tmp_path / "b.pdf").write_bytes(b"lixo")

    with pytest.raises(LoaderError) as caught:
        load_directory(tmp_path)

    assert caught.value.path.name == "a.pdf"
    assert any("1 more problem" in note for note in caught.value.__notes__)


def test_sidecar_left_behind_by_a_rename_is_an_error(tmp_path: Path) -> None:
    make_pdf(tmp_path / "manual-v2.pdf", [["Manual interno"]])
    write(tmp_path / "manual.pdf.meta.yaml", "audience: internal\n")

    report = collect_directory(tmp_path)

    assert [e.path.name for e in report.errors] == ["manual.pdf.meta.yaml"]
    assert "no matching knowledge file" in report.errors[0].reason


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="not a directory"):
        load_directory(tmp_path / "nao-existe")


# --------------------------------------------------------------------------- accents


@pytest.mark.parametrize("suffix", [".md", ".txt", ".html", ".pdf", ".docx"])
def test_portuguese_accents_survive_every_format(tmp_path: Path, suffix: str) -> None:
    sentence = "Ação de cobrança não é exigível após a conclusão; informação à população."
    path = tmp_path / f"acentos{suffix}"
    if suffix == ".pdf":
        make_pdf(path, [[sentence]], title="Título")
    elif suffix == ".docx":
        document = docx.Document()
        document.add_paragraph(sentence)
        document.save(str(path))
    elif suffix == ".html":
        write(path, f"<html><body><p>{sentence}</p></body></html>")
    else:
        write(path, sentence + "\n")

    assert sentence in load_document(path).text


def test_decomposed_accents_are_normalised_to_composed_form(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Certidão de Ônus")
    path = write(tmp_path / "onus.txt", decomposed + "\n")

    doc = load_document(path)

    assert doc.text == "Certidão de Ônus"
    assert doc.title == "Certidão de Ônus"


def test_loader_error_survives_pickling(tmp_path: Path) -> None:
    error = LoaderError(tmp_path / "a.pdf", "corrupt")

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.path, copy.reason, str(copy)) == (error.path, "corrupt", str(error))


def test_markdown_hard_line_breaks_are_kept(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "endereco.md", "Praça da Matriz, 100  \nCentro\n"))

    assert doc.text == "Praça da Matriz, 100  \nCentro"


@pytest.mark.parametrize(
    "header",
    ["---\naudience internal\n---\n", "---\n- internal\n---\n"],
    ids=["missing-colon", "list"],
)
def test_front_matter_that_is_not_a_mapping_is_rejected(tmp_path: Path, header: str) -> None:
    path = write(tmp_path / "a.md", header + "Procedimento interno.\n")

    with pytest.raises(LoaderError, match="must be a YAML mapping"):
        load_document(path)


def test_unclosed_front_matter_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "---\naudience: internal\n\nProcedimento interno.\n")

    with pytest.raises(LoaderError, match="never closed"):
        load_document(path)

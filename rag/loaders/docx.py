"""Word (DOCX) files: heading styles become headings, list styles list items, tables Markdown tables."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from rag.loaders.common import Meta, Parsed, collapse, escape_markdown, join_blocks, markdown_table, nfc

_DOCX_HEADING = re.compile(r"^(?:heading|t[ií]tulo)\s*(\d)$", re.IGNORECASE)
_DOCX_TITLE = re.compile(r"^(?:title|t[ií]tulo)$", re.IGNORECASE)
_DOCX_LIST = re.compile(r"\b(?:list|lista)\b", re.IGNORECASE)
_DOCX_NUMBERED = re.compile(r"number|numerad", re.IGNORECASE)


def parse_docx(path: Path) -> Parsed:
    document = docx.Document(str(path))
    blocks: list[tuple[str, str]] = []
    first_heading: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [_docx_row(row.cells) for row in item.rows]
            rows = [r for r in rows if any(r)]
            if rows:
                blocks.append(("table", markdown_table(rows)))
            continue
        if not isinstance(item, Paragraph):
            continue
        text = collapse(item.text)
        if not text:
            continue
        style = item.style.name if item.style is not None and item.style.name else ""
        level = _docx_heading_level(style)
        if level is not None:
            first_heading = first_heading or text
            if level <= 4:
                blocks.append(("heading", "#" * level + " " + escape_markdown(text)))
                continue
        pPr = item._p.pPr
        if _DOCX_LIST.search(style) or (pPr is not None and pPr.numPr is not None):
            if _DOCX_NUMBERED.search(style):
                # Numbering definitions are out of reach; a run of numbered paragraphs counts from 1.
                previous = blocks[-1][1] if blocks and blocks[-1][0] == "item" else ""
                number = int(m.group(1)) + 1 if (m := re.match(r"(\d+)\. ", previous)) else 1
                blocks.append(("item", f"{number}. " + escape_markdown(text)))
            else:
                blocks.append(("item", "- " + escape_markdown(text)))
        else:
            blocks.append(("para", escape_markdown(text)))

    core_title = collapse(nfc(document.core_properties.title or ""))
    return Parsed(text=join_blocks(blocks), title=core_title or first_heading, meta=Meta())


def _docx_heading_level(style: str) -> int | None:
    if _DOCX_TITLE.match(style.strip()):
        return 1
    match = _DOCX_HEADING.match(style.strip())
    return int(match.group(1)) if match else None


def _docx_row(cells: Iterable[Any]) -> list[str]:
    out: list[str] = []
    previous: object = None
    for cell in cells:
        # Merged cells come back once per grid column; keep one copy.
        if cell._tc is previous:
            continue
        previous = cell._tc
        out.append(collapse(cell.text))
    return out

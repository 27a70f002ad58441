"""PDF files: each page's extracted text as escaped plain text; the title from /Title or the first line."""

from __future__ import annotations

import re
from pathlib import Path

from pypdf import PdfReader

from rag.loaders.common import LoaderError, Meta, Parsed, collapse, first_line, nfc, plain_text_to_markdown


def parse_pdf(path: Path) -> Parsed:
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise LoaderError(path, "PDF is password-protected")
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(plain_text_to_markdown(p) for p in pages)
    title = _useful_pdf_title(reader.metadata.title if reader.metadata else None)
    return Parsed(text=text, title=title or first_line("\n".join(pages)), meta=Meta())


_JUNK_PDF_TITLE = re.compile(
    r"^(untitled|sem t[ií]tulo|documento\d*|microsoft word - .*|.*\.(docx?|odt|pdf))$", re.IGNORECASE
)


def _useful_pdf_title(title: str | None) -> str | None:
    # Producers fill /Title with placeholders ("untitled") or the source file name.
    if not title:
        return None
    title = collapse(nfc(title))
    return None if not title or _JUNK_PDF_TITLE.match(title) else title

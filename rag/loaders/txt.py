"""Plain-text files: escaped so Markdown renders them verbatim; the first line is the title."""

from __future__ import annotations

from pathlib import Path

from rag.loaders.common import Meta, Parsed, first_line, plain_text_to_markdown, read_utf8


def parse_txt(path: Path) -> Parsed:
    raw = read_utf8(path)
    return Parsed(text=plain_text_to_markdown(raw), title=first_line(raw), meta=Meta())

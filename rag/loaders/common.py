"""What every format's parser shares: the error, the parsed result, and text and Markdown helpers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from rag.types import Audience


class LoaderError(Exception):
    """A knowledge file that cannot be turned into a Document."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, reason)  # both in args, so the error survives pickling
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Meta:
    """Metadata a file declares about itself; None means "not given"."""

    id: str | None = None
    title: str | None = None
    audience: Audience | None = None
    team: str | None = None
    tags: tuple[str, ...] | None = None
    updated_at: str | None = None
    url: str | None = None

    def overridden_by(self, other: Meta) -> Meta:
        return Meta(
            id=_first(other.id, self.id),
            title=_first(other.title, self.title),
            audience=_first(other.audience, self.audience),
            team=_first(other.team, self.team),
            tags=_first(other.tags, self.tags),
            updated_at=_first(other.updated_at, self.updated_at),
            url=_first(other.url, self.url),
        )


_T = TypeVar("_T")


def _first(preferred: _T | None, fallback: _T | None) -> _T | None:
    return fallback if preferred is None else preferred


@dataclass(frozen=True)
class Parsed:
    """One file as its format's parser read it: Markdown text, the title it suggests, its own metadata."""

    text: str
    title: str | None
    meta: Meta


def nfc(text: str) -> str:
    # PDFs often carry decomposed accents; NFC makes "São" match "São" in lexical search.
    return unicodedata.normalize("NFC", text)


def read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(path, f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from exc


def first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return None


def collapse(text: str) -> str:
    return " ".join(text.split())


_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<])|&(?=#?\w+;)")
_BLOCK_RULE = re.compile(r"^\s*([-=*_])(?:\s*\1){2,}\s*$|^\s*=+\s*$")


def escape_markdown(line: str) -> str:
    """Escape one line of plain text so Markdown renders it back verbatim."""
    escaped = _INLINE_SPECIAL.sub(lambda m: "\\" + m.group(0), line)
    stripped = escaped.lstrip()
    # A plain "#" line would become a heading and a "---" line would turn the line above into one.
    if stripped.startswith("#") or _BLOCK_RULE.match(escaped):
        indent = len(escaped) - len(stripped)
        escaped = escaped[:indent] + "\\" + stripped
    return escaped


_BULLET = re.compile(r"^\s*[•◦▪▫‣●○■□–]\s+")


def plain_text_to_markdown(text: str) -> str:
    """Escape plain text; blank lines separate paragraphs and typographic bullets become list items."""
    out: list[str] = []
    for raw in nfc(text).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        bullet = _BULLET.match(line)
        if bullet:
            out.append("- " + escape_markdown(line[bullet.end() :]))
        else:
            out.append(escape_markdown(line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def join_blocks(blocks: list[tuple[str, str]]) -> str:
    """Blank lines between blocks, except between items of one list."""
    parts: list[str] = []
    for i, (kind, text) in enumerate(blocks):
        if i:
            parts.append("\n" if kind == "item" and blocks[i - 1][0] == "item" else "\n\n")
        parts.append(text)
    return "".join(parts)


def markdown_table(rows: list[list[str]]) -> str:
    width = max(len(r) for r in rows)
    padded = [r + [""] * (width - len(r)) for r in rows]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(escape_markdown(c).replace("|", "\\|") for c in cells) + " |"

    # GFM needs a delimiter row, so the first row doubles as the header even without <th>.
    return "\n".join([line(padded[0]), "|" + " --- |" * width, *(line(r) for r in padded[1:])])

"""Answers as WhatsApp shows them: its own markup, the 4,096-character limit, short citation links and the
interactive limits (3 reply buttons; a list of up to 10 rows)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from channels.kb_links import KB_URL_PREFIX, article_link, quotes_of

MAX_TEXT: Final = 4096
MAX_INTERACTIVE_BODY: Final = 1024
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE: Final = 20
MAX_LIST_ROWS: Final = 10
MAX_ROW_TITLE: Final = 24
MAX_ROW_DESCRIPTION: Final = 72
MAX_LIST_BUTTON: Final = 20
MAX_ID: Final = 256


class InteractiveLimitError(ValueError):
    """An interactive message breaks one of WhatsApp's limits; the Graph API would refuse it."""


@dataclass(frozen=True, slots=True)
class Button:
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    title: str
    description: str | None = None


_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.M)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD_MARK = "\x00"


def to_whatsapp(markdown: str) -> str:
    """Markdown → WhatsApp markup: *bold*, _italic_, ~strike~, • bullets, headings in bold, links spelled out."""
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", markdown)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    return text.replace(_BOLD_MARK, "*")


_BREAKS: Final = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def _break_at(text: str, limit: int) -> int:
    """Where to end the next piece: the best natural break within `limit`, preferring one past half of it."""
    window = text[:limit]
    for earliest in (limit // 2, 1):
        for sep in _BREAKS:
            at = window.rfind(sep)
            if at >= earliest:
                return at + len(sep.rstrip())  # punctuation stays with the piece, whitespace goes
    return limit


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters at paragraph, line, sentence or word breaks (a word
    longer than the limit is cut hard)."""
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _break_at(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def short_link(url: str, base_url: str, quotes: Iterable[str] = ()) -> str:
    """A cited article as a link the citizen can open: /kb/<id> on the public site, pointing at the quoted
    passages (see channels/kb_links.py)."""
    url = article_link(url, quotes)
    if url.startswith("/"):
        return base_url.rstrip("/") + url
    return url


def sources_block(citations: Sequence[Mapping[str, Any]], base_url: str, heading: str) -> str:
    lines: list[str] = []
    for c in citations:
        link = short_link(str(c.get("url") or KB_URL_PREFIX + str(c.get("doc_id", ""))), base_url, quotes_of(c))
        lines.append(f"[{c.get('n', len(lines) + 1)}] {c.get('title', '')}: {link}")
    return f"*{heading}:*\n" + "\n".join(lines) if lines else ""


def text_body(text: str) -> dict[str, Any]:
    if not text.strip():
        raise ValueError("empty WhatsApp text")
    if len(text) > MAX_TEXT:
        raise ValueError(f"WhatsApp text longer than {MAX_TEXT} characters; split it first")
    return {"type": "text", "text": {"body": text, "preview_url": False}}


def _check_id(value: str) -> None:
    if not value or len(value) > MAX_ID:
        raise InteractiveLimitError(f"an id must have 1 to {MAX_ID} characters")


def buttons_body(text: str, buttons: Sequence[Button]) -> dict[str, Any]:
    """Reply buttons under a short text: at most 3, titles of at most 20 characters, distinct ids."""
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise InteractiveLimitError(f"a button message needs 1 to {MAX_BUTTONS} buttons, got {len(buttons)}")
    if not text.strip() or len(text) > MAX_INTERACTIVE_BODY:
        raise InteractiveLimitError(f"a button message's text must have 1 to {MAX_INTERACTIVE_BODY} characters")
    if len({b.id for b in buttons}) != len(buttons):
        raise InteractiveLimitError("button ids must be distinct")
    for b in buttons:
        _check_id(b.id)
        if not b.title or len(b.title) > MAX_BUTTON_TITLE:
            raise InteractiveLimitError(f"button title {b.title!r} must have 1 to {MAX_BUTTON_TITLE} characters")
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": text},
            "action": {"buttons": [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in buttons]},
        },
    }


def list_body(text: str, button: str, rows: Sequence[Row], section: str | None = None) -> dict[str, Any]:
    """A menu: one section of at most 10 rows (titles ≤ 24, descriptions ≤ 72 characters)."""
    if not 1 <= len(rows) <= MAX_LIST_ROWS:
        raise InteractiveLimitError(f"a list needs 1 to {MAX_LIST_ROWS} rows, got {len(rows)}")
    if not text.strip() or len(text) > MAX_INTERACTIVE_BODY:
        raise InteractiveLimitError(f"a list's text must have 1 to {MAX_INTERACTIVE_BODY} characters")
    if not button or len(button) > MAX_LIST_BUTTON:
        raise InteractiveLimitError(f"the list button must have 1 to {MAX_LIST_BUTTON} characters")
    if len({r.id for r in rows}) != len(rows):
        raise InteractiveLimitError("row ids must be distinct")
    out_rows = []
    for r in rows:
        _check_id(r.id)
        if not r.title or len(r.title) > MAX_ROW_TITLE:
            raise InteractiveLimitError(f"row title {r.title!r} must have 1 to {MAX_ROW_TITLE} characters")
        if r.description is not None and len(r.description) > MAX_ROW_DESCRIPTION:
            raise InteractiveLimitError(f"row description must have at most {MAX_ROW_DESCRIPTION} characters")
        row: dict[str, Any] = {"id": r.id, "title": r.title}
        if r.description:
            row["description"] = r.description
        out_rows.append(row)
    sec: dict[str, Any] = {"rows": out_rows}
    if section:
        sec["title"] = section[:MAX_ROW_TITLE]
    return {
        "type": "interactive",
        "interactive": {"type": "list", "body": {"text": text}, "action": {"button": button, "sections": [sec]}},
    }


def fit(title: str, limit: int) -> str:
    """Shorten a label to `limit` characters, with an ellipsis when cut."""
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def answer_bodies(
    answer: str,
    citations: Sequence[Mapping[str, Any]],
    *,
    base_url: str,
    sources_heading: str,
    offer: Button | None = None,
    offer_prompt: str = "",
) -> list[dict[str, Any]]:
    """The assistant's answer as WhatsApp messages: the text (split at 4,096), its sources as short links,
    and, when `offer` is given, a reply button (in the last message when it fits, else after it)."""
    text = to_whatsapp(answer).strip()
    block = sources_block(citations, base_url, sources_heading)
    if block:
        text = f"{text}\n\n{block}"
    parts = split_text(text)
    if offer is None:
        return [text_body(p) for p in parts]
    if len(parts[-1]) <= MAX_INTERACTIVE_BODY:
        return [*(text_body(p) for p in parts[:-1]), buttons_body(parts[-1], [offer])]
    return [*(text_body(p) for p in parts), buttons_body(offer_prompt, [offer])]

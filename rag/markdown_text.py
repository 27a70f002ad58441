"""Markdown parsing shared by the loaders and the chunker."""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

_LINKABLE = ("http://", "https://", "mailto:")


def markdown_parser() -> MarkdownIt:
    """CommonMark plus the GFM tables and strikethrough that knowledge articles use."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def inline_text(children: Sequence[Token] | None) -> str:
    """Plain text of an inline token's children: markup dropped, link text kept.

    Absolute link targets are appended in parentheses because the address is often the answer
    ("emita em https://…"); relative links point nowhere outside the site and are dropped.
    """
    parts: list[str] = []
    links: list[tuple[int, str]] = []  # (len(parts) at link_open, href)
    for token in children or ():
        kind = token.type
        if kind in ("text", "code_inline"):
            parts.append(token.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            parts.append(token.content)
        elif kind == "link_open":
            links.append((len(parts), str(token.attrs.get("href", ""))))
        elif kind == "link_close" and links:
            start, href = links.pop()
            label = "".join(parts[start:])
            shown = href.removeprefix("mailto:")
            if href.startswith(_LINKABLE) and shown not in label:
                parts.append(f" ({shown})")
        elif kind == "html_inline" and token.content.lower().startswith("<br"):
            # Tags carry no text, but a <br> still separates words.
            parts.append(" ")
        # Emphasis, strong and strikethrough markers contribute nothing.
    return "".join(parts)

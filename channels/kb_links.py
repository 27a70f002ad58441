"""Links from a citation to the passages an answer used, and the marking of those passages on the article page.

A citation of a knowledge article (`kb://articles/<id>`) becomes `/kb/<id>?trecho=<key>&trecho=<key>#trecho`: one
`trecho` per quoted passage (at most MAX_QUOTES), each key the first KEY_WORDS words of the passage as a reader sees
it (Markdown markup dropped), lower case, without accents or punctuation, joined by hyphens, e.g.
`/kb/iptu-segunda-via?trecho=pix-lendo-o-qr-code-impresso#trecho`. The page marks the paragraph, list item or table
row where each key's words occur and gives the first of them the `trecho` id, so the fragment scrolls there.
Keys hold only letters, digits and hyphens, so a link needs no escaping and reads well in a WhatsApp message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

KB_URL_PREFIX: Final = "kb://articles/"
PARAM: Final = "trecho"
ANCHOR: Final = "trecho"
MARK_CLASS: Final = "trecho"
MAX_QUOTES: Final = 4
KEY_WORDS: Final = 6
# A key from a request longer than this is not one this module wrote; its words are not worth searching for.
MAX_KEY_CHARS: Final = 160

_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"[.!?;:]")
# A quoted list item or heading may keep its marker ("- ", "2. ", "> ", "## "); the reader does not see it as text.
_BLOCK_MARKER = re.compile(r"^\s*(?:>\s*)*(?:[-*+]|\d{1,9}[.)]|#{1,6})\s+")


@lru_cache(maxsize=1)
def article_parser() -> MarkdownIt:
    """How the article page renders Markdown: CommonMark with GFM tables and strikethrough, raw HTML as text."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The words of a text as they are compared: case, accents and punctuation dropped."""
    return _WORD.findall(_folded(text))


def reader_text(markdown: str) -> str:
    """What a reader sees of one Markdown passage (a sentence, a list item, a table row): markup dropped."""
    from rag.markdown_text import inline_text

    tokens = article_parser().parseInline(_BLOCK_MARKER.sub("", markdown.strip()))
    return " ".join(inline_text(token.children) for token in tokens)


def quote_key(markdown: str) -> str:
    """The short key of a quoted passage: its first KEY_WORDS words, hyphen-joined ("" for a passage of no words)."""
    return "-".join(words(reader_text(markdown))[:KEY_WORDS])


def quotes_of(citation: Mapping[str, Any]) -> list[str]:
    """The quoted passages of a citation as stored or serialised (anything that is not a list of texts is none)."""
    quotes = citation.get("quotes")
    if not isinstance(quotes, list | tuple):
        return []
    return [q for q in quotes if isinstance(q, str)]


def article_link(url: str, quotes: Iterable[str] = ()) -> str:
    """Where a citizen opens a cited source: a knowledge article's page, pointing at the quoted passages.

    External sources keep their own address (their pages cannot be marked).
    """
    if not url.startswith(KB_URL_PREFIX):
        return url
    path = "/kb/" + url.removeprefix(KB_URL_PREFIX)
    keys: list[str] = []
    for quote in quotes:
        key = quote_key(quote)
        if key and key not in keys:
            keys.append(key)
        if len(keys) == MAX_QUOTES:
            break
    if not keys:
        return path
    return f"{path}?{urlencode([(PARAM, k) for k in keys])}#{ANCHOR}"


def keys_from_query(values: Sequence[str]) -> list[tuple[str, ...]]:
    """The keys a page request asks to mark, as word sequences; oversized or wordless values are dropped."""
    keys: list[tuple[str, ...]] = []
    for value in values[:MAX_QUOTES]:
        if len(value) > MAX_KEY_CHARS:
            continue
        key = tuple(words(value))
        if key and key not in keys:
            keys.append(key)
    return keys


_CONTAINERS: Final = ("tr_open", "list_item_open")


def _blocks(tokens: Sequence[Token]) -> dict[int, list[Token]]:
    """Each markable block (by the index of its opening token) with the inline tokens of its own text.

    A table row and a list item are marked whole; other text is marked by its paragraph. A heading is not a
    passage (its text sits in no paragraph), and a nested list item is its own block, not part of its parent's.
    """
    blocks: dict[int, list[Token]] = {}
    open_stack: list[int] = []
    for i, token in enumerate(tokens):
        if token.nesting == 1:
            open_stack.append(i)
        elif token.nesting == -1 and open_stack:
            open_stack.pop()
        elif token.type == "inline":
            owner = next((j for j in reversed(open_stack) if tokens[j].type in _CONTAINERS), None)
            if owner is None:
                owner = next((j for j in reversed(open_stack) if tokens[j].type == "paragraph_open"), None)
            if owner is not None:
                blocks.setdefault(owner, []).append(token)
    return blocks


@dataclass(frozen=True, slots=True)
class _Text:
    """A block's words, and which of them begin a sentence (or the block, or a table cell)."""

    words: tuple[str, ...]
    starts: frozenset[int]


def _text_of(pieces: Iterable[str]) -> _Text:
    found: list[str] = []
    starts: set[int] = set()
    for piece in pieces:
        folded = _folded(piece)
        gap_start = 0
        for n, match in enumerate(_WORD.finditer(folded)):
            if n == 0 or _SENTENCE_END.search(folded, gap_start, match.start()):
                starts.add(len(found))
            found.append(match.group())
            gap_start = match.end()
    return _Text(tuple(found), frozenset(starts))


def _rank(key: tuple[str, ...], text: _Text) -> int | None:
    """How well a key fits a block: 0 at its start, 1 at a sentence start, 2 anywhere, None nowhere."""
    best: int | None = None
    for at in range(len(text.words) - len(key) + 1):
        if text.words[at : at + len(key)] == key:
            rank = 0 if at == 0 else 1 if at in text.starts else 2
            best = rank if best is None else min(best, rank)
    return best


def _where(key: tuple[str, ...], texts: dict[int, _Text]) -> int | None:
    """The block a key points at: the first where its words start the block, else start a sentence, else
    occur at all (a quote is a whole item or sentence, so words in mid-sentence are the weakest evidence)."""
    ranked = [(rank, i) for i, text in texts.items() if (rank := _rank(key, text)) is not None]
    return min(ranked)[1] if ranked else None


def mark_passages(tokens: list[Token], keys: Sequence[tuple[str, ...]]) -> list[int]:
    """Mark, in place, the block each key points at: class `trecho` on the block, its text in `<mark>`, and the
    `trecho` id on the first marked block. Keys found nowhere are ignored. Returns the marked blocks' token indexes.
    """
    from markdown_it.token import Token

    from rag.markdown_text import inline_text

    blocks = _blocks(tokens)
    texts = {i: _text_of(inline_text(t.children) for t in inlines) for i, inlines in blocks.items()}
    marked = sorted({i for key in keys if (i := _where(key, texts)) is not None})
    for i in marked:
        tokens[i].attrJoin("class", MARK_CLASS)
        for inline in blocks[i]:
            # The renderer prints html_inline tokens verbatim; these two are fixed strings, never article text.
            inline.children = [
                Token("html_inline", "", 0, content="<mark>"),
                *(inline.children or []),
                Token("html_inline", "", 0, content="</mark>"),
            ]
    if marked:
        tokens[marked[0]].attrSet("id", ANCHOR)
    return marked

"""HTML pages: the main content flattened into Markdown; metadata from `<meta name="atende:…">` tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import CData, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

from rag.loaders.common import Parsed, collapse, escape_markdown, join_blocks, markdown_table
from rag.loaders.metadata import meta_from_mapping

_HTML_DROP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "footer",
        "svg",
        "iframe",
        "object",
        "embed",
        "canvas",
        "button",
        "select",
        "head",
    }
)
_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4}
_HTML_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "aside",
        "body",
        "html",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "figure",
        "figcaption",
        "blockquote",
        "pre",
        "address",
        "details",
        "summary",
        "form",
        "fieldset",
        "legend",
        "h5",
        "h6",
        "hr",
        "center",
    }
)
_SKIPPED_STRINGS = (Comment, CData, Declaration, Doctype, ProcessingInstruction)


def parse_html(path: Path) -> Parsed:
    # Bytes let BeautifulSoup honour the page's own <meta charset>.
    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    meta_values: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        name = str(tag.get("name") or "").strip().lower()
        if name.startswith("atende:"):
            meta_values[name.removeprefix("atende:")] = str(tag.get("content") or "")
    meta = meta_from_mapping(meta_values, path)

    title: str | None = None
    for candidate in soup.find_all("title"):
        if candidate.find_parent("svg") is None:  # an inline icon's <title> is not the page's
            title = collapse(candidate.get_text()) or None
            break
    if title is None:
        h1 = soup.find("h1")
        if h1 is not None:
            title = collapse(h1.get_text()) or None

    for tag in soup.find_all(list(_HTML_DROP)):
        tag.decompose()
    mains = soup.find_all("main")
    # A single <main> is the page's content; everything around it is site chrome.
    content: Tag = mains[0] if len(mains) == 1 else (soup.body or soup)
    return Parsed(text=_HtmlToMarkdown().convert(content), title=title, meta=meta)


@dataclass
class _HtmlList:
    ordered: bool
    indent: str
    next_number: int = 1


class _HtmlToMarkdown:
    """Flattens HTML into Markdown blocks: headings, paragraphs, list items and table rows."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str]] = []  # (kind, markdown)
        self.inline: list[str] = []
        self.lists: list[_HtmlList] = []
        self.item_indents: list[str] = []  # where the content of each open <li> starts
        self.item_prefix: str | None = None

    def convert(self, root: Tag) -> str:
        self._children(root)
        self._flush()
        return join_blocks(self.blocks)

    def _children(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, _SKIPPED_STRINGS):
                    self.inline.append(str(child))
            elif isinstance(child, Tag):
                self._element(child)

    def _element(self, tag: Tag) -> None:
        name = tag.name.lower()
        if name in _HTML_HEADINGS:
            self._flush()
            text = collapse(tag.get_text())
            if text:
                self.blocks.append(("heading", "#" * _HTML_HEADINGS[name] + " " + escape_markdown(text)))
        elif name in ("ul", "ol"):
            self._flush()
            # Markdown nests a list only when it is indented to its parent item's content.
            indent = self.item_indents[-1] if self.item_indents else ""
            self.lists.append(_HtmlList(name == "ol", indent, _list_start(tag)))
            self._children(tag)
            self._flush()
            self.lists.pop()
        elif name == "li":
            self._flush()
            current = self.lists[-1] if self.lists else _HtmlList(False, "")
            marker = f"{current.next_number}. " if current.ordered else "- "
            current.next_number += 1
            self.item_prefix = current.indent + marker
            self.item_indents.append(current.indent + " " * len(marker))
            self._children(tag)
            self._flush()
            self.item_indents.pop()
            self.item_prefix = None
        elif name == "table":
            self._flush()
            self._table(tag)
        elif name == "br":
            self._flush()
        elif name == "a":
            self._children(tag)
            href = str(tag.get("href") or "").strip()
            label = collapse(tag.get_text())
            shown = href.removeprefix("mailto:")
            # Citizens need the address itself; relative links point nowhere outside the site.
            if href.startswith(("http://", "https://", "mailto:")) and shown not in label:
                self.inline.append(f" ({shown})")
        elif name in _HTML_BLOCKS:
            self._flush()
            self._children(tag)
            self._flush()
        else:
            self._children(tag)

    def _flush(self) -> None:
        text = collapse("".join(self.inline))
        self.inline = []
        if not text:
            return
        if self.item_prefix is not None:
            self.blocks.append(("item", self.item_prefix + escape_markdown(text)))
            # Further text in the same <li> (after a nested list) continues as a paragraph.
            self.item_prefix = None
        else:
            self.blocks.append(("para", escape_markdown(text)))

    def _table(self, table: Tag) -> None:
        rows: list[list[str]] = []
        for tr in table.find_all("tr"):
            if tr.find_parent("table") is not table:
                continue
            cells = [collapse(c.get_text(" ")) for c in tr.find_all(["th", "td"], recursive=False)]
            if any(cells):
                rows.append(cells)
        if rows:
            self.blocks.append(("table", markdown_table(rows)))


def _list_start(tag: Tag) -> int:
    try:
        return int(str(tag.get("start") or 1))
    except ValueError:
        return 1

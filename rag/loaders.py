"""Load knowledge files (Markdown, HTML, PDF, DOCX, TXT) into `Document`s.

Every loader produces Markdown: headings become `#` lines and plain text is escaped, so one
heading-aware chunker serves all formats.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import docx
import yaml
from bs4 import BeautifulSoup
from bs4.element import CData, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag
from docx.table import Table
from docx.text.paragraph import Paragraph
from frontmatter.default_handlers import YAMLHandler
from pypdf import PdfReader

from rag.markdown_text import inline_text, markdown_parser
from rag.types import Audience, Document

SIDECAR_SUFFIX = ".meta.yaml"
METADATA_KEYS = frozenset({"id", "title", "audience", "team", "tags", "updated_at", "url"})


class LoaderError(Exception):
    """A knowledge file that cannot be turned into a Document."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, reason)  # both in args, so the error survives pickling
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class LoadReport:
    """Outcome of loading a directory without stopping at the first bad file."""

    documents: list[Document]
    errors: list[LoaderError]
    skipped: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class _Meta:
    """Metadata a file declares about itself; None means "not given"."""

    id: str | None = None
    title: str | None = None
    audience: Audience | None = None
    team: str | None = None
    tags: tuple[str, ...] | None = None
    updated_at: str | None = None
    url: str | None = None

    def overridden_by(self, other: _Meta) -> _Meta:
        return _Meta(
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
class _Parsed:
    text: str
    title: str | None
    meta: _Meta


# --------------------------------------------------------------------------- public API


def load_document(path: Path, root: Path | None = None) -> Document:
    """Load one knowledge file; `source` is its POSIX path relative to `root` when given."""
    path = Path(path)
    parser = _PARSERS.get(path.suffix.lower())
    if parser is None:
        raise LoaderError(path, f"unsupported file type {path.suffix or '(none)'!r}")
    source = _source_for(path, root)
    try:
        parsed = parser(path)
    except LoaderError:
        raise
    except OSError as exc:
        raise LoaderError(path, f"cannot read file ({exc.strerror or exc})") from exc
    except Exception as exc:  # parsers raise many unrelated types on corrupt input
        kind = path.suffix.lstrip(".").upper()
        raise LoaderError(path, f"corrupt or unreadable {kind} file: {exc}") from exc

    meta = parsed.meta
    sidecar = _sidecar_path(path)
    if sidecar.exists():
        if parser is _parse_markdown:
            # Two sources of truth for one article invite silent disagreement about its audience.
            raise LoaderError(sidecar, "Markdown files keep metadata in front matter; remove the sidecar")
        meta = meta.overridden_by(_read_sidecar(sidecar))

    text = _nfc(parsed.text).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not text:
        hint = " (scanned PDF? it needs OCR first)" if path.suffix.lower() == ".pdf" else ""
        raise LoaderError(path, f"no text found{hint}")

    doc_id = meta.id if meta.id is not None else _nfc(path.stem).strip()
    if not doc_id:
        raise LoaderError(path, "empty id")
    if "#" in doc_id:
        # Chunk ids are "<doc id>#<position>", so "#" in a document id would make them ambiguous.
        raise LoaderError(path, f"id {doc_id!r} must not contain '#'")
    title = meta.title or _nfc(parsed.title or "") or _nfc(path.stem)
    return Document(
        id=doc_id,
        title=title,
        text=text,
        audience=meta.audience or "public",
        team=meta.team or "",
        tags=meta.tags or (),
        updated_at=meta.updated_at or "",
        source=source,
        url=meta.url or f"kb://articles/{quote(doc_id, safe='')}",
    )


def collect_directory(root: Path) -> LoadReport:
    """Load every knowledge file under `root`, collecting problems instead of raising.

    Files are visited in sorted order; hidden files and folders, Office lock files (`~$…`) and the
    top-level README.md are skipped. Of two files sharing an id, the first one is kept.
    """
    root = Path(root)
    if not root.is_dir():
        return LoadReport([], [LoaderError(root, "not a directory")])
    documents: list[Document] = []
    errors: list[LoaderError] = []
    skipped: list[Path] = []
    owner: dict[str, str] = {}
    candidates: set[Path] = set()
    paths = _walk(root)
    for path in paths:
        if path.name.lower().endswith(SIDECAR_SUFFIX):
            continue
        if path.suffix.lower() not in _PARSERS:
            skipped.append(path)
            continue
        candidates.add(path)
        try:
            doc = load_document(path, root)
        except LoaderError as exc:
            errors.append(exc)
            continue
        if doc.id in owner:
            errors.append(LoaderError(path, f"duplicate id {doc.id!r}: already used by {owner[doc.id]}"))
            continue
        owner[doc.id] = doc.source
        documents.append(doc)
    for path in paths:
        name = path.name
        if name.lower().endswith(SIDECAR_SUFFIX):
            target = path.with_name(name[: -len(SIDECAR_SUFFIX)])
            if target not in candidates:
                # A sidecar left behind by a rename would silently drop e.g. `audience: internal`.
                errors.append(LoaderError(path, f"sidecar has no matching knowledge file {target.name!r}"))
    return LoadReport(documents, errors, skipped)


def load_directory(root: Path) -> list[Document]:
    """Load every knowledge file under `root`; raise the first LoaderError if any file is bad."""
    report = collect_directory(root)
    if report.errors:
        first = report.errors[0]
        if len(report.errors) > 1:
            first.add_note(f"{len(report.errors) - 1} more problem(s); collect_directory() lists them all")
        raise first
    return report.documents


# --------------------------------------------------------------------------- walking


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        here = Path(dirpath)
        for name in filenames:
            if name.startswith((".", "~$")):
                continue
            if here == root and name.lower() == "readme.md":
                continue
            found.append(here / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _source_for(path: Path, root: Path | None) -> str:
    if root is None:
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError as exc:
        raise LoaderError(path, f"file is not inside {root}") from exc


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


# --------------------------------------------------------------------------- metadata


def _read_sidecar(path: Path) -> _Meta:
    try:
        data = yaml.safe_load(_read_utf8(path))
    except yaml.YAMLError as exc:
        raise LoaderError(path, f"invalid YAML: {exc}") from exc
    if data is None:
        return _Meta()
    if not isinstance(data, Mapping):
        raise LoaderError(path, "sidecar must be a YAML mapping")
    return _meta_from_mapping(data, path)


def _meta_from_mapping(data: Mapping[Any, Any], path: Path) -> _Meta:
    unknown = sorted(str(k) for k in data if k not in METADATA_KEYS)
    if unknown:
        # Strict on purpose: a typo such as "audiance: internal" would otherwise publish the text.
        raise LoaderError(
            path,
            f"unknown metadata field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(METADATA_KEYS))}",
        )
    return _Meta(
        id=_scalar(data.get("id"), "id", path),
        title=_scalar(data.get("title"), "title", path),
        audience=_audience(data.get("audience"), path),
        team=_scalar(data.get("team"), "team", path),
        tags=_tags(data.get("tags"), path),
        updated_at=_updated_at(data.get("updated_at"), path),
        url=_scalar(data.get("url"), "url", path),
    )


def _scalar(value: object, name: str, path: Path) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise LoaderError(path, f"{name} must be text, got {type(value).__name__}")
    return _nfc(str(value)).strip() or None


def _audience(value: object, path: Path) -> Audience | None:
    text = _scalar(value, "audience", path)
    if text is None:
        return None
    lowered = text.lower()
    if lowered == "public":
        return "public"
    if lowered == "internal":
        return "internal"
    raise LoaderError(path, f"audience must be 'public' or 'internal', got {text!r}")


def _tags(value: object, path: Path) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise LoaderError(path, f"tags must be a list, got {type(value).__name__}")
    tags: list[str] = []
    for item in items:
        tag = _scalar(item, "each tag", path)
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _updated_at(value: object, path: Path) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):  # datetime is a date subclass too
        return value.isoformat()
    text = _scalar(value, "updated_at", path)
    if text is None:
        return None
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            parse(text)
        except ValueError:
            continue
        return text
    raise LoaderError(path, f"updated_at must be an ISO date such as 2024-05-31, got {text!r}")


# --------------------------------------------------------------------------- text helpers


def _nfc(text: str) -> str:
    # PDFs often carry decomposed accents; NFC makes "São" match "São" in lexical search.
    return unicodedata.normalize("NFC", text)


def _read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(path, f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8") from exc


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


def _plain_text_to_markdown(text: str) -> str:
    """Escape plain text; blank lines separate paragraphs and typographic bullets become list items."""
    out: list[str] = []
    for raw in _nfc(text).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        bullet = _BULLET.match(line)
        if bullet:
            out.append("- " + escape_markdown(line[bullet.end() :]))
        else:
            out.append(escape_markdown(line))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return None


def _collapse(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- Markdown

_MD = markdown_parser()


_FRONT_MATTER = YAMLHandler()


def _parse_markdown(path: Path) -> _Parsed:
    text = _read_utf8(path).strip()
    data: object = None
    if _FRONT_MATTER.detect(text):
        try:
            header, text = _FRONT_MATTER.split(text)
            data = _FRONT_MATTER.load(header)
        except ValueError as exc:
            raise LoaderError(path, "front matter opened with '---' but never closed") from exc
        except yaml.YAMLError as exc:
            raise LoaderError(path, f"invalid YAML front matter: {exc}") from exc
    if data is not None and not isinstance(data, Mapping):
        # python-frontmatter would ignore it, silently turning e.g. "audience internal" into public.
        raise LoaderError(path, "front matter must be a YAML mapping of field: value")
    meta = _meta_from_mapping(data or {}, path)
    return _Parsed(text=text, title=_first_h1(text), meta=meta)


def _first_h1(markdown: str) -> str | None:
    tokens = _MD.parse(markdown)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1":
            title = _collapse(inline_text(tokens[i + 1].children))
            if title:
                return title
    return None


# --------------------------------------------------------------------------- HTML

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


def _parse_html(path: Path) -> _Parsed:
    # Bytes let BeautifulSoup honour the page's own <meta charset>.
    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    meta_values: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        name = str(tag.get("name") or "").strip().lower()
        if name.startswith("atende:"):
            meta_values[name.removeprefix("atende:")] = str(tag.get("content") or "")
    meta = _meta_from_mapping(meta_values, path)

    title: str | None = None
    for candidate in soup.find_all("title"):
        if candidate.find_parent("svg") is None:  # an inline icon's <title> is not the page's
            title = _collapse(candidate.get_text()) or None
            break
    if title is None:
        h1 = soup.find("h1")
        if h1 is not None:
            title = _collapse(h1.get_text()) or None

    for tag in soup.find_all(list(_HTML_DROP)):
        tag.decompose()
    mains = soup.find_all("main")
    # A single <main> is the page's content; everything around it is site chrome.
    content: Tag = mains[0] if len(mains) == 1 else (soup.body or soup)
    return _Parsed(text=_HtmlToMarkdown().convert(content), title=title, meta=meta)


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
        return _join_blocks(self.blocks)

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
            text = _collapse(tag.get_text())
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
            label = _collapse(tag.get_text())
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
        text = _collapse("".join(self.inline))
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
            cells = [_collapse(c.get_text(" ")) for c in tr.find_all(["th", "td"], recursive=False)]
            if any(cells):
                rows.append(cells)
        if rows:
            self.blocks.append(("table", _markdown_table(rows)))


def _list_start(tag: Tag) -> int:
    try:
        return int(str(tag.get("start") or 1))
    except ValueError:
        return 1


def _join_blocks(blocks: list[tuple[str, str]]) -> str:
    """Blank lines between blocks, except between items of one list."""
    parts: list[str] = []
    for i, (kind, text) in enumerate(blocks):
        if i:
            parts.append("\n" if kind == "item" and blocks[i - 1][0] == "item" else "\n\n")
        parts.append(text)
    return "".join(parts)


def _markdown_table(rows: list[list[str]]) -> str:
    width = max(len(r) for r in rows)
    padded = [r + [""] * (width - len(r)) for r in rows]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(escape_markdown(c).replace("|", "\\|") for c in cells) + " |"

    # GFM needs a delimiter row, so the first row doubles as the header even without <th>.
    return "\n".join([line(padded[0]), "|" + " --- |" * width, *(line(r) for r in padded[1:])])


# --------------------------------------------------------------------------- PDF


def _parse_pdf(path: Path) -> _Parsed:
    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise LoaderError(path, "PDF is password-protected")
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(_plain_text_to_markdown(p) for p in pages)
    title = _useful_pdf_title(reader.metadata.title if reader.metadata else None)
    return _Parsed(text=text, title=title or _first_line("\n".join(pages)), meta=_Meta())


_JUNK_PDF_TITLE = re.compile(
    r"^(untitled|sem t[ií]tulo|documento\d*|microsoft word - .*|.*\.(docx?|odt|pdf))$", re.IGNORECASE
)


def _useful_pdf_title(title: str | None) -> str | None:
    # Producers fill /Title with placeholders ("untitled") or the source file name.
    if not title:
        return None
    title = _collapse(_nfc(title))
    return None if not title or _JUNK_PDF_TITLE.match(title) else title


# --------------------------------------------------------------------------- DOCX

_DOCX_HEADING = re.compile(r"^(?:heading|t[ií]tulo)\s*(\d)$", re.IGNORECASE)
_DOCX_TITLE = re.compile(r"^(?:title|t[ií]tulo)$", re.IGNORECASE)
_DOCX_LIST = re.compile(r"\b(?:list|lista)\b", re.IGNORECASE)
_DOCX_NUMBERED = re.compile(r"number|numerad", re.IGNORECASE)


def _parse_docx(path: Path) -> _Parsed:
    document = docx.Document(str(path))
    blocks: list[tuple[str, str]] = []
    first_heading: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [_docx_row(row.cells) for row in item.rows]
            rows = [r for r in rows if any(r)]
            if rows:
                blocks.append(("table", _markdown_table(rows)))
            continue
        if not isinstance(item, Paragraph):
            continue
        text = _collapse(item.text)
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

    core_title = _collapse(_nfc(document.core_properties.title or ""))
    return _Parsed(text=_join_blocks(blocks), title=core_title or first_heading, meta=_Meta())


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
        out.append(_collapse(cell.text))
    return out


# --------------------------------------------------------------------------- TXT


def _parse_txt(path: Path) -> _Parsed:
    raw = _read_utf8(path)
    return _Parsed(text=_plain_text_to_markdown(raw), title=_first_line(raw), meta=_Meta())


_PARSERS: dict[str, Callable[[Path], _Parsed]] = {
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
    ".txt": _parse_txt,
}

__all__ = [
    "LoadReport",
    "LoaderError",
    "collect_directory",
    "escape_markdown",
    "load_directory",
    "load_document",
]

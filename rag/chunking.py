"""Heading-aware chunking of Markdown documents into retrievable passages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bs4 import BeautifulSoup
from markdown_it.token import Token

from rag.markdown_text import inline_text, markdown_parser
from rag.types import Chunk, Document

DEFAULT_MAX_CHARS = 900
DEFAULT_OVERLAP_SENTENCES = 1
DEFAULT_MIN_CHARS = 120
SECTION_SEPARATOR = " > "

_UnitKind = Literal["para", "item", "row", "code"]
_MD = markdown_parser()


def chunk_document(
    doc: Document,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES,
    min_chars: int = DEFAULT_MIN_CHARS,
) -> list[Chunk]:
    """Split a document into chunks that each stay inside one heading section.

    - Headings of levels 1–4 open sections; `section` is the heading path (" > "-joined), empty for
      text under the title. A leading level-1 heading that repeats the title is the title itself
      and is not part of any path; one worded differently is kept, since it may carry meaning.
    - A section longer than `max_chars` is cut where it hurts least: between paragraphs, else
      between list items or table rows (a cut table repeats its header row), else between sentences
      (repeating `overlap_sentences` sentences), else between words; a line ending in ":" stays with
      what it introduces, and the pieces come out evenly sized. Words are never cut: a single word
      longer than `max_chars` becomes an oversized chunk.
    - Tiny sections (< `min_chars`) are kept as their own chunk, since a short section such as
      "Horário: 8h às 17h" is often the whole answer. The one exception is a tiny lead-in that
      ends with a colon and is directly followed by its own subsections ("## Documentos / Você vai
      precisar de: / ### Pessoa física"): it only makes sense with what follows, so it is prepended
      to the first subsection, whose heading path still contains the lead-in's heading. Siblings
      are never merged: that would file text under the wrong heading.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences must not be negative")
    chunks: list[Chunk] = []
    doc_hash = doc.hash
    for section in _merge_lead_ins(_sections(doc), min_chars):
        for text in _pack(section.units, max_chars, overlap_sentences):
            position = len(chunks)
            chunks.append(
                Chunk(
                    id=f"{doc.id}#{position}",
                    doc_id=doc.id,
                    title=doc.title,
                    section=SECTION_SEPARATOR.join(section.path),
                    text=text,
                    audience=doc.audience,
                    source=doc.source,
                    url=doc.url,
                    position=position,
                    doc_hash=doc_hash,
                )
            )
    return chunks


def chunk_documents(
    docs: Iterable[Document],
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES,
    min_chars: int = DEFAULT_MIN_CHARS,
) -> list[Chunk]:
    """Chunk many documents, in order."""
    return [chunk for doc in docs for chunk in chunk_document(doc, max_chars, overlap_sentences, min_chars)]


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class _Unit:
    """A block that reads on its own: a paragraph, one list item, one table row or a code block."""

    kind: _UnitKind
    text: str
    group: int = 0  # the list or table it belongs to; items of one group share a line break


@dataclass
class _Section:
    path: tuple[str, ...]
    units: list[_Unit] = field(default_factory=list)


@dataclass
class _Item:
    prefix: str
    unit: _Unit | None = None


def _sections(doc: Document) -> list[_Section]:
    tokens = _MD.parse(doc.text)
    title_heading = _title_heading_index(tokens, doc.title)
    sections = [_Section(())]
    headings: list[tuple[int, str]] = []
    lists: list[Token] = []
    items: list[_Item] = []
    row: list[str] | None = None
    group = 0

    def add(unit: _Unit) -> None:
        if unit.text.strip():
            sections[-1].units.append(unit)

    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            level = int(token.tag[1:])
            text = _one_line(inline_text(tokens[i + 1].children))
            i += 3  # heading_open, inline, heading_close
            if i - 3 == title_heading or not text:
                continue
            if level > 4:
                add(_Unit("para", text))
                continue
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, text))
            sections.append(_Section(tuple(h for _, h in headings)))
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            if not lists:
                group += 1
            lists.append(token)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            indent = "  " * (len(lists) - 1)
            ordered = bool(lists) and lists[-1].type == "ordered_list_open"
            marker = f"{token.info}{token.markup} " if ordered else "- "
            items.append(_Item(indent + marker))
        elif kind == "list_item_close":
            items.pop()
        elif kind == "table_open":
            group += 1
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            if row is not None and any(row):
                add(_Unit("row", " | ".join(row), group))
            row = None
        elif kind in ("fence", "code_block"):
            add(_Unit("code", token.content.strip("\n")))
        elif kind == "html_block":
            add(_Unit("para", _one_line(BeautifulSoup(token.content, "html.parser").get_text(" "))))
        elif kind == "inline":
            text = _clean(inline_text(token.children))
            if row is not None:
                row.append(text)
            elif items:
                _add_item_text(sections[-1], items[-1], text, group)
            else:
                add(_Unit("para", text))
        i += 1
    return [s for s in sections if s.units]


def _add_item_text(section: _Section, item: _Item, text: str, group: int) -> None:
    if not text:
        return
    if item.unit is None:
        item.unit = _Unit("item", item.prefix + text, group)
        section.units.append(item.unit)
    elif section.units and section.units[-1] is item.unit:
        # A second paragraph of the same list item belongs on the item's line.
        item.unit = _Unit("item", f"{item.unit.text} {text}", group)
        section.units[-1] = item.unit
    else:
        # Text after a nested list: keep it indented under its item, without a new marker.
        section.units.append(_Unit("item", " " * len(item.prefix) + text, group))


def _title_heading_index(tokens: Sequence[Token], title: str) -> int | None:
    first = next((i for i, t in enumerate(tokens) if t.type == "heading_open"), None)
    if first is None or tokens[first].tag != "h1":
        return None
    return first if _fold(inline_text(tokens[first + 1].children)) == _fold(title) else None


def _merge_lead_ins(sections: list[_Section], min_chars: int) -> list[_Section]:
    merged: list[_Section] = []
    carried: list[_Unit] = []
    for index, section in enumerate(sections):
        units = carried + section.units
        carried = []
        following = sections[index + 1] if index + 1 < len(sections) else None
        if (
            section.path
            and following is not None
            and _is_descendant(following.path, section.path)
            and len(text := _join(units)) < min_chars
            and text.rstrip().endswith(":")
        ):
            carried = units
            continue
        merged.append(_Section(section.path, units))
    return merged


def _is_descendant(path: tuple[str, ...], ancestor: tuple[str, ...]) -> bool:
    return len(path) > len(ancestor) and path[: len(ancestor)] == ancestor


# --------------------------------------------------------------------------- packing

_Piece = Literal["unit", "sentence", "line", "word"]

# Costs of cutting a section at a given boundary, in units of max_chars² (the slack of an empty
# chunk): paragraph boundaries are free, a list may be cut between items, a paragraph only between
# sentences, a sentence only between words, and a lead-in ("Você vai precisar de:") should not be
# separated from what it introduces.
_CUT_BETWEEN_ITEMS = 0.05
_CUT_AFTER_LEAD_IN = 1.0
_CUT_BETWEEN_SENTENCES = 0.5
_CUT_BETWEEN_WORDS = 2.0


@dataclass(frozen=True)
class _Atom:
    """The smallest piece packing moves around: a whole unit, a sentence, a code line or a word."""

    text: str
    sep: str  # placed before the atom when it follows another one in the same chunk
    unit: int
    piece: _Piece = "unit"
    kind: _UnitKind = "para"
    group: int = 0


def _unit_separator(previous: _Unit | None, unit: _Unit) -> str:
    if (
        previous is not None
        and unit.kind in ("item", "row")
        and (previous.kind, previous.group) == (unit.kind, unit.group)
    ):
        return "\n"
    return "\n\n"


def _join(units: Sequence[_Unit]) -> str:
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index:
            parts.append(_unit_separator(units[index - 1], unit))
        parts.append(unit.text)
    return "".join(parts)


def _atoms(units: Sequence[_Unit], max_chars: int) -> list[_Atom]:
    atoms: list[_Atom] = []
    for index, unit in enumerate(units):
        sep = _unit_separator(units[index - 1] if index else None, unit)
        if len(unit.text) <= max_chars:
            atoms.append(_Atom(unit.text, sep, index, "unit", unit.kind, unit.group))
            continue
        pieces: list[tuple[str, str, _Piece]] = []
        for line_no, line in enumerate(unit.text.split("\n")):
            line_sep = sep if line_no == 0 else "\n"
            if unit.kind == "code":
                pieces.append((line, line_sep, "line"))
                continue
            for s_no, sentence in enumerate(split_sentences(line) or [line]):
                pieces.append((sentence, line_sep if s_no == 0 else " ", "sentence"))
        for text, piece_sep, piece in pieces:
            if len(text) <= max_chars:
                atoms.append(_Atom(text, piece_sep, index, piece, unit.kind, unit.group))
                continue
            for w_no, word in enumerate(text.split()):
                word_sep = piece_sep if w_no == 0 else " "
                atoms.append(_Atom(word, word_sep, index, "word", unit.kind, unit.group))
    return atoms


def _cut_cost(atoms: Sequence[_Atom], j: int) -> float:
    """Cost, in max_chars² units, of ending a chunk just before atoms[j]."""
    if j == len(atoms):
        return 0.0
    before, after = atoms[j - 1], atoms[j]
    if before.unit == after.unit:
        return _CUT_BETWEEN_WORDS if "word" in (before.piece, after.piece) else _CUT_BETWEEN_SENTENCES
    if before.text.rstrip().endswith(":"):
        return _CUT_AFTER_LEAD_IN
    if before.kind == after.kind and before.kind in ("item", "row") and before.group == after.group:
        return _CUT_BETWEEN_ITEMS
    return 0.0


def _lead(atoms: Sequence[_Atom], start: int, count: int, headers: dict[int, _Atom]) -> list[_Atom]:
    """What a chunk repeats when it starts mid-way: a table's header row, or the sentences before."""
    if start == 0:
        return []
    first, previous = atoms[start], atoms[start - 1]
    if first.kind == "row" and (previous.kind, previous.group) == ("row", first.group):
        header = headers[first.group]
        return [header] if header.piece == "unit" else []
    if count == 0 or first.sep != " " or previous.unit != first.unit:
        return []
    lead: list[_Atom] = []
    for i in range(start - 1, -1, -1):
        if len(lead) == count or atoms[i].piece != "sentence" or atoms[i].unit != first.unit:
            break
        lead.insert(0, atoms[i])
    return lead


def _length(atoms: Sequence[_Atom]) -> int:
    return sum(len(a.text) for a in atoms) + sum(len(a.sep) for a in atoms[1:])


def _fit_lead(lead: list[_Atom], body_first: _Atom, body_length: int, max_chars: int) -> list[_Atom]:
    while lead and _length(lead) + len(body_first.sep) + body_length > max_chars:
        lead = lead[1:]
    return lead


def _render(atoms: Sequence[_Atom]) -> str:
    if not atoms:
        return ""
    return (atoms[0].text + "".join(a.sep + a.text for a in atoms[1:])).strip()


def _pack(units: Sequence[_Unit], max_chars: int, overlap: int) -> list[str]:
    """Cut a section into chunks of at most `max_chars`, choosing the cheapest set of cuts.

    Dynamic programming over atom boundaries minimises the squared unused room of every chunk
    plus the cost of each cut. Squared room favours few, evenly filled chunks over a full chunk
    followed by a scrap; cut costs keep paragraphs, sentences and lead-ins whole when possible.
    """
    atoms = _atoms(units, max_chars)
    n = len(atoms)
    headers: dict[int, _Atom] = {}
    for atom in atoms:
        if atom.kind == "row":
            headers.setdefault(atom.group, atom)
    leads = [_lead(atoms, i, overlap, headers) for i in range(n)]
    scale = float(max_chars) ** 2
    best = [0.0] + [float("inf")] * n
    start_of = [0] * (n + 1)
    for j in range(1, n + 1):
        cut = _cut_cost(atoms, j) * scale
        body = 0  # length of atoms[i:j] rendered
        for i in range(j - 1, -1, -1):
            single = i == j - 1
            body += len(atoms[i].text) + (0 if single else len(atoms[i + 1].sep))
            if body > max_chars and not single:
                break
            lead = _fit_lead(leads[i], atoms[i], body, max_chars)
            total = body + (_length(lead) + len(atoms[i].sep) if lead else 0)
            cost = best[i] + max(max_chars - total, 0) ** 2 + cut
            if cost < best[j]:
                best[j] = cost
                start_of[j] = i
    chunks: list[str] = []
    j = n
    while j > 0:
        i = start_of[j]
        body_atoms = atoms[i:j]
        lead = _fit_lead(leads[i], atoms[i], _length(body_atoms), max_chars)
        text = _render([*lead, *body_atoms])
        if text:
            chunks.append(text)
        j = i
    return chunks[::-1]


# --------------------------------------------------------------------------- text


_ABBREVIATIONS = frozenset(
    {
        "sr",
        "sra",
        "srs",
        "sras",
        "srta",
        "dr",
        "dra",
        "drs",
        "dras",
        "prof",
        "profa",
        "profs",
        "exmo",
        "exma",
        "ilmo",
        "ilma",
        "art",
        "arts",
        "inc",
        "incs",
        "par",
        "n",
        "nº",
        "no",
        "nos",
        "núm",
        "num",
        "pág",
        "pag",
        "p",
        "pp",
        "cap",
        "caps",
        "av",
        "r",
        "rod",
        "km",
        "tel",
        "cel",
        "fax",
        "ltda",
        "cia",
        "dept",
        "depto",
        "aprox",
        "min",
        "máx",
        "max",
        "obs",
        "ex",
        "vol",
        "ed",
        "fl",
        "fls",
        "séc",
        "sec",
        "proc",
        "id",
        "jan",
        "fev",
        "mar",
        "abr",
        "mai",
        "jun",
        "jul",
        "ago",
        "set",
        "out",
        "nov",
        "dez",
    }
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(\s+)")


def split_sentences(text: str) -> list[str]:
    """Split Portuguese prose into sentences, keeping abbreviations ("Art. 5º", "Sr.") intact."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        after = text[match.end() :]
        if not after or not _starts_sentence(after):
            continue
        if text[match.start()] == "." and _is_abbreviation(text[start : match.start()]):
            continue
        sentences.append(text[start : match.start(1)].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _starts_sentence(text: str) -> bool:
    first = text.lstrip("\"'“‘([¿¡-–—•* ")[:1]
    return bool(first) and (first.isupper() or first.isdigit())


def _is_abbreviation(before: str) -> bool:
    word = re.search(r"(\S+)$", before)
    if word is None:
        return False
    token = word.group(1).lstrip("(\"'“‘[").lower()
    if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
        return True
    parts = token.split(".")
    # Dotted initialisms such as "S.A" or "e.g" end in an abbreviation dot, not a sentence.
    return len(parts) > 1 and all(0 < len(p) <= 2 and p.isalpha() for p in parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clean(text: str) -> str:
    lines = (_one_line(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _fold(text: str) -> str:
    return _one_line(text).casefold()


__all__ = ["chunk_document", "chunk_documents", "split_sentences"]

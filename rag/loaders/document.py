"""One knowledge file into a `Document`: the parser its suffix names, then the checks every format shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from rag.loaders.common import LoaderError, Parsed, nfc
from rag.loaders.docx import parse_docx
from rag.loaders.html import parse_html
from rag.loaders.markdown import parse_markdown
from rag.loaders.metadata import read_sidecar, sidecar_path
from rag.loaders.pdf import parse_pdf
from rag.loaders.txt import parse_txt
from rag.types import Document

PARSERS: dict[str, Callable[[Path], Parsed]] = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".txt": parse_txt,
}


def load_document(path: Path, root: Path | None = None) -> Document:
    """Load one knowledge file; `source` is its POSIX path relative to `root` when given."""
    path = Path(path)
    parser = PARSERS.get(path.suffix.lower())
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
    sidecar = sidecar_path(path)
    if sidecar.exists():
        if parser is parse_markdown:
            # Two sources of truth for one article invite silent disagreement about its audience.
            raise LoaderError(sidecar, "Markdown files keep metadata in front matter; remove the sidecar")
        meta = meta.overridden_by(read_sidecar(sidecar))

    text = nfc(parsed.text).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not text:
        hint = " (scanned PDF? it needs OCR first)" if path.suffix.lower() == ".pdf" else ""
        raise LoaderError(path, f"no text found{hint}")

    doc_id = meta.id if meta.id is not None else nfc(path.stem).strip()
    if not doc_id:
        raise LoaderError(path, "empty id")
    if "#" in doc_id:
        # Chunk ids are "<doc id>#<position>", so "#" in a document id would make them ambiguous.
        raise LoaderError(path, f"id {doc_id!r} must not contain '#'")
    title = meta.title or nfc(parsed.title or "") or nfc(path.stem)
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


def _source_for(path: Path, root: Path | None) -> str:
    if root is None:
        return path.as_posix()
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError as exc:
        raise LoaderError(path, f"file is not inside {root}") from exc

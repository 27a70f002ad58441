"""Knowledge articles as the MCP server serves them (`kb://articles/{id}`), with their audience."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.types import Audience

if TYPE_CHECKING:
    from rag.index import KnowledgeIndex
    from rag.types import Document


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    audience: Audience
    text: str


class ArticleSource(Protocol):
    def get(self, doc_id: str) -> Article | None: ...

    def ids(self, audience: Audience = "public") -> list[str]: ...


class IndexArticles:
    """Reads what the knowledge index holds, so the server serves exactly what the assistant retrieves."""

    def __init__(self, index: KnowledgeIndex) -> None:
        self._index = index

    def get(self, doc_id: str) -> Article | None:
        chunks = self._index.lexical.chunks_of(doc_id)
        if not chunks:
            return None
        parts: list[str] = []
        for i, chunk in enumerate(chunks):
            if chunk.section and (i == 0 or chunk.section != chunks[i - 1].section):
                parts.append(f"## {chunk.section}")
            parts.append(chunk.text)
        return Article(doc_id, chunks[0].title, chunks[0].audience, "\n\n".join(parts))

    def ids(self, audience: Audience = "public") -> list[str]:
        return sorted({c.doc_id for c in self._index.lexical.chunks_of_audience(audience)})


class DirectoryArticles:
    """Loads the knowledge folder on first use (for the stdio server, which has no index loaded)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._docs: dict[str, Document] | None = None
        self._lock = threading.Lock()

    def _all(self) -> dict[str, Document]:
        with self._lock:
            if self._docs is None:
                from rag.loaders import load_directory

                self._docs = {d.id: d for d in load_directory(self._root)} if self._root.is_dir() else {}
            return self._docs

    def get(self, doc_id: str) -> Article | None:
        doc = self._all().get(doc_id)
        return Article(doc.id, doc.title, doc.audience, doc.text) if doc else None

    def ids(self, audience: Audience = "public") -> list[str]:
        return sorted(d.id for d in self._all().values() if d.audience == audience)

"""Value types that flow through ingestion, indexing and retrieval."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

Audience = Literal["public", "internal"]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One knowledge article, whatever format it was loaded from."""

    id: str
    title: str
    text: str
    audience: Audience = "public"
    team: str = ""
    tags: tuple[str, ...] = ()
    updated_at: str = ""
    source: str = ""
    url: str = ""

    @property
    def hash(self) -> str:
        # Metadata is part of the hash so a changed audience or title re-indexes the document.
        meta = "|".join([self.title, self.audience, self.team, ",".join(self.tags), self.url])
        return content_hash(meta + "\n" + self.text)


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage of a document, labelled with the heading path it sits under."""

    id: str
    doc_id: str
    title: str
    section: str
    text: str
    audience: Audience = "public"
    source: str = ""
    url: str = ""
    position: int = 0
    doc_hash: str = ""

    def embedding_text(self) -> str:
        """The text that is embedded and indexed: title and section give a passage its context."""
        head = self.title if not self.section else f"{self.title} — {self.section}"
        return f"{head}\n{self.text}"


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float
    dense: float | None = None
    lexical: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

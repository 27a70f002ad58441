"""The knowledge index: keeps the vector store and the BM25 index in step with the documents."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from rag.chunking import chunk_document
from rag.lexical import LexicalIndex
from rag.ports import Embedder, VectorStore
from rag.query_cache import QueryVectorCache
from rag.retriever import HybridRetriever, RetrievalParams
from rag.types import Audience, Document, ScoredChunk, content_hash

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
            f"{self.unchanged} unchanged; {self.chunks} chunks indexed"
        )


class KnowledgeIndex:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        params: RetrievalParams | None = None,
        *,
        max_chunk_chars: int = 900,
        query_vectors: QueryVectorCache | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.lexical = LexicalIndex()
        self.retriever = HybridRetriever(embedder, store, self.lexical, params, query_vectors)
        self._max_chunk_chars = max_chunk_chars
        self._lock = threading.Lock()
        self._titles: dict[str, str] = {}

    def warm_up(self) -> None:
        self.embedder.warm_up()
        self.store.warm_up()
        self.refresh_lexical()

    def close(self) -> None:
        self.retriever.close()
        self.store.close()

    def refresh_lexical(self) -> None:
        chunks = self.store.all_chunks()
        self.lexical.build(chunks)
        self._titles = {c.doc_id: c.title for c in chunks}

    def index_hash(self, doc: Document) -> str:
        # Vectors depend on the embedder and the chunking as much as on the text: changing either re-indexes.
        return content_hash(f"{doc.hash}|{self.embedder.model_id}|{self._max_chunk_chars}")

    def sync(self, documents: Sequence[Document], *, prune: bool = True) -> SyncReport:
        """Index new and changed documents by content hash; with `prune`, drop documents no longer present."""
        with self._lock:
            report = SyncReport()
            indexed = self.store.document_hashes()
            wanted = {d.id: d for d in documents}
            changed: list[Document] = []
            for doc in documents:
                old = indexed.get(doc.id)
                if old is None:
                    report.added.append(doc.id)
                    changed.append(doc)
                elif old != self.index_hash(doc):
                    report.updated.append(doc.id)
                    changed.append(doc)
                else:
                    report.unchanged += 1
            if prune:
                report.deleted = sorted(set(indexed) - set(wanted))
            stale = [d.id for d in changed if d.id in indexed] + report.deleted
            if stale:
                self.store.delete_documents(stale)
            chunks = [
                replace(c, doc_hash=self.index_hash(d))
                for d in changed
                for c in chunk_document(d, max_chars=self._max_chunk_chars)
            ]
            if chunks:
                vectors = self.embedder.embed_passages([c.embedding_text() for c in chunks])
                self.store.upsert(chunks, vectors)
            self.refresh_lexical()
            report.chunks = self.store.count()
            log.info("knowledge sync: %s", report.summary())
            return report

    def retrieve(
        self,
        query: str,
        k: int,
        audiences: Sequence[Audience] = ("public",),
        params: RetrievalParams | None = None,
    ) -> list[ScoredChunk]:
        return self.retriever.retrieve(query, k, audiences, params)

    def document_title(self, doc_id: str) -> str | None:
        return self._titles.get(doc_id)

"""The boundaries of the retrieval layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rag.types import Audience, Chunk, ScoredChunk


@runtime_checkable
class Embedder(Protocol):
    """Turns text into vectors; queries and passages may be embedded differently (e5 prefixes)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def warm_up(self) -> None: ...

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class VectorStore(Protocol):
    """Stores chunks with their vectors and finds the nearest ones, filtered by audience."""

    def warm_up(self) -> None: ...

    def close(self) -> None: ...

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None: ...

    def delete_documents(self, doc_ids: Sequence[str]) -> None: ...

    def query(
        self,
        embedding: Sequence[float],
        k: int,
        audiences: Sequence[Audience] = ("public",),
    ) -> list[ScoredChunk]: ...

    def all_chunks(self) -> list[Chunk]: ...

    def document_hashes(self) -> dict[str, str]: ...

    def count(self) -> int: ...

"""VectorStore implementations: in-memory (tests, tiny corpora) and Chroma (local directory or server)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.types import Audience, Chunk, ScoredChunk


class InMemoryVectorStore:
    """Exact cosine search over a numpy matrix; nothing persists."""

    def __init__(self) -> None:
        self._chunks: dict[str, Chunk] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._matrix: np.ndarray | None = None
        self._order: list[Chunk] = []
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        return None

    def close(self) -> None:
        return None

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        if len(chunks) != len(embeddings):
            raise ValueError("chunks and embeddings differ in length")
        with self._lock:
            for chunk, vec in zip(chunks, embeddings, strict=True):
                v = np.asarray(vec, dtype=np.float32)
                n = float(np.linalg.norm(v))
                self._chunks[chunk.id] = chunk
                self._vectors[chunk.id] = v / n if n else v
            self._matrix = None

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        gone = set(doc_ids)
        with self._lock:
            for cid in [cid for cid, c in self._chunks.items() if c.doc_id in gone]:
                del self._chunks[cid]
                del self._vectors[cid]
            self._matrix = None

    def query(
        self, embedding: Sequence[float], k: int, audiences: Sequence[Audience] = ("public",)
    ) -> list[ScoredChunk]:
        with self._lock:
            if self._matrix is None:
                self._order = list(self._chunks.values())
                self._matrix = np.stack([self._vectors[c.id] for c in self._order]) if self._order else np.zeros((0, 1))
            # The snapshot holds the chunks themselves: a concurrent upsert or delete must not break a query.
            order, matrix = self._order, self._matrix
        allowed = [i for i, chunk in enumerate(order) if chunk.audience in audiences]
        if not allowed or k <= 0:
            return []
        q = np.asarray(embedding, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        # float32 rounding lets the cosine of a vector with itself exceed 1; callers rely on [-1, 1].
        sims = np.clip(matrix[allowed] @ q, -1.0, 1.0).astype(np.float32)
        top = np.argsort(-sims)[:k]
        return [ScoredChunk(order[allowed[i]], float(sims[i]), dense=float(sims[i])) for i in top]

    def all_chunks(self) -> list[Chunk]:
        with self._lock:
            chunks = list(self._chunks.values())
        return sorted(chunks, key=lambda c: (c.doc_id, c.position))

    def document_hashes(self) -> dict[str, str]:
        with self._lock:
            return {c.doc_id: c.doc_hash for c in self._chunks.values()}

    def count(self) -> int:
        return len(self._chunks)


_META_KEYS = ("doc_id", "title", "section", "audience", "source", "url", "position", "doc_hash")


def _to_meta(chunk: Chunk) -> dict[str, Any]:
    return {key: getattr(chunk, key) for key in _META_KEYS}


def _from_meta(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(
        id=chunk_id,
        doc_id=str(meta["doc_id"]),
        title=str(meta["title"]),
        section=str(meta.get("section", "")),
        text=text,
        audience="internal" if meta.get("audience") == "internal" else "public",
        source=str(meta.get("source", "")),
        url=str(meta.get("url", "")),
        position=int(meta.get("position", 0)),
        doc_hash=str(meta.get("doc_hash", "")),
    )


class ChromaVectorStore:
    """Chroma, either a local persistent directory (demo) or a Chroma server over HTTP (production).

    Embeddings are always passed explicitly: Chroma's default embedding function downloads a model.
    """

    def __init__(self, *, path: Path | None = None, url: str | None = None, collection: str = "atende-kb") -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path (local directory) or url (Chroma server)")
        self._path = path
        self._url = url
        self._collection_name = collection
        self._client: Any = None
        self._collection: Any = None
        # Every chunk this handle has read or written, by id: a query asks Chroma only for ids and distances.
        self._chunks: dict[str, Chunk] = {}
        self._chunks_lock = threading.Lock()

    def warm_up(self) -> None:
        if self._collection is not None:
            return
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self._path is not None:
            self._path.mkdir(parents=True, exist_ok=True)
            client: Any = chromadb.PersistentClient(path=str(self._path), settings=settings)
        else:
            from urllib.parse import urlparse

            assert self._url is not None
            u = urlparse(self._url)
            client = chromadb.HttpClient(
                host=u.hostname or "127.0.0.1",
                port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https",
                settings=settings,
            )
        try:
            self._collection = client.get_or_create_collection(
                self._collection_name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        except BaseException:
            client.close()
            raise
        self._client = client

    def close(self) -> None:
        """Release the client: an HTTP client holds pooled sockets, a local one holds the directory's lock."""
        client, self._client, self._collection = self._client, None, None
        with self._chunks_lock:
            self._chunks = {}
        if client is None:
            return
        # chromadb 1.5's Client.close() leaves the HTTP connection pools of the client and of its internal admin
        # client open (chroma-core/chroma#2702), so their sockets leak until garbage collection; close them too.
        sessions = [
            getattr(getattr(owner, "_server", None), "_session", None)
            for owner in (client, getattr(client, "_admin_client", None))
        ]
        client.close()
        for session in sessions:
            if session is not None and callable(getattr(session, "close", None)):
                session.close()

    @property
    def _col(self) -> Any:
        self.warm_up()
        return self._collection

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        if len(chunks) != len(embeddings):
            raise ValueError("chunks and embeddings differ in length")
        for i in range(0, len(chunks), 1000):
            batch = chunks[i : i + 1000]
            self._col.upsert(
                ids=[c.id for c in batch],
                embeddings=[list(map(float, e)) for e in embeddings[i : i + 1000]],
                documents=[c.text for c in batch],
                metadatas=[_to_meta(c) for c in batch],
            )
            with self._chunks_lock:
                self._chunks.update((c.id, c) for c in batch)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            self._col.delete(where={"doc_id": {"$in": list(doc_ids)}})
            gone = set(doc_ids)
            with self._chunks_lock:
                self._chunks = {cid: c for cid, c in self._chunks.items() if c.doc_id not in gone}

    def query(
        self, embedding: Sequence[float], k: int, audiences: Sequence[Audience] = ("public",)
    ) -> list[ScoredChunk]:
        if k <= 0:
            return []
        vector = [list(map(float, embedding))]
        # Chroma's metadata filter makes a query ~10x slower (62 ms vs 6 ms at 10k chunks), and internal
        # chunks are few: ask for more neighbours unfiltered and drop the others, falling back to the
        # filtered query only when too few survive. Chroma returns fewer than asked when that is all it has.
        fetch = 2 * k + 10
        res = self._col.query(query_embeddings=vector, n_results=fetch, include=["distances"])
        out = [s for s in self._scored(res) if s.chunk.audience in audiences]
        if len(out) >= k or len(res["ids"][0]) < fetch:
            return out[:k]
        res = self._col.query(
            query_embeddings=vector, n_results=k, where={"audience": {"$in": list(audiences)}}, include=["distances"]
        )
        return self._scored(res)

    def _scored(self, res: Any) -> list[ScoredChunk]:
        """Chroma's ids and distances as scored chunks. Reading documents and metadata back from Chroma's SQLite
        costs ~8 ms a query at 10k chunks, four times its nearest-neighbour search (decision 0043), so chunks
        come from those this handle has read or written; only ids it never saw (written by another process)
        are read from Chroma."""
        ids, distances = res["ids"][0], res["distances"][0]
        with self._chunks_lock:
            missing = [cid for cid in ids if cid not in self._chunks]
        if missing:
            got = self._col.get(ids=missing, include=["documents", "metadatas"])
            read = [
                _from_meta(cid, text, dict(meta))
                for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            ]
            with self._chunks_lock:
                self._chunks.update((c.id, c) for c in read)
        with self._chunks_lock:
            known = [(self._chunks.get(cid), dist) for cid, dist in zip(ids, distances, strict=True)]
        out: list[ScoredChunk] = []
        for chunk, dist in known:
            if chunk is None:  # deleted between the search and the read
                continue
            # Cosine distance → similarity; HNSW's float32 arithmetic can step just outside [-1, 1].
            sim = min(1.0, max(-1.0, 1.0 - float(dist)))
            out.append(ScoredChunk(chunk, sim, dense=sim))
        return out

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, read from Chroma; what this handle knew is replaced by it (the index calls this when it
        warms up and after every sync, so a text another process changed is picked up there)."""
        res = self._col.get(include=["documents", "metadatas"])
        chunks = [
            _from_meta(cid, text, dict(meta))
            for cid, text, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
        ]
        with self._chunks_lock:
            self._chunks = {c.id: c for c in chunks}
        return sorted(chunks, key=lambda c: (c.doc_id, c.position))

    def document_hashes(self) -> dict[str, str]:
        res = self._col.get(include=["metadatas"])
        return {str(m["doc_id"]): str(m.get("doc_hash", "")) for m in res["metadatas"]}

    def count(self) -> int:
        return int(self._col.count())

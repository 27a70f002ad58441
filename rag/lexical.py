"""BM25 over Portuguese-stemmed, accent-folded terms (bm25s + PyStemmer)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from rag.text import content_terms
from rag.types import Audience, Chunk, ScoredChunk


class LexicalIndex:
    """An in-memory BM25 index, rebuilt from the vector store's chunks (the single source of truth)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self._k1 = k1
        self._b = b
        self._chunks: list[Chunk] = []
        self._bm25: object | None = None
        self._audience = np.array([], dtype=object)
        self._masks: dict[tuple[str, ...], np.ndarray] = {}
        self._df: Counter[str] = Counter()

    def build(self, chunks: Sequence[Chunk]) -> None:
        import bm25s

        self._chunks = list(chunks)
        self._audience = np.array([c.audience for c in self._chunks], dtype=object)
        self._masks = {}
        self._df = Counter()
        if not self._chunks:
            self._bm25 = None
            return
        corpus = [content_terms(c.embedding_text()) or ["_"] for c in self._chunks]
        self._df = Counter(t for terms in corpus for t in set(terms))
        bm25 = bm25s.BM25(k1=self._k1, b=self._b)
        bm25.index(corpus, show_progress=False)
        self._bm25 = bm25

    def idf(self, term: str) -> float:
        """How rare a stem is among the chunks: rare words say more about what a question is about."""
        return math.log(1 + len(self._chunks) / (1 + self._df.get(term, 0)))

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [c for c in self._chunks if c.doc_id == doc_id]

    def chunks_of_audience(self, audience: Audience) -> list[Chunk]:
        return [c for c in self._chunks if c.audience == audience]

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, query: str, k: int, audiences: Sequence[Audience] = ("public",)) -> list[ScoredChunk]:
        if self._bm25 is None:
            return []
        terms = content_terms(query)
        if not terms:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)  # type: ignore[attr-defined]
        key = tuple(sorted(audiences))
        mask = self._masks.get(key)
        if mask is None:  # an object-array isin costs milliseconds at 10k chunks; the mask rarely changes
            mask = self._masks[key] = np.isin(self._audience, list(key))
        scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [ScoredChunk(self._chunks[i], float(scores[i]), lexical=float(scores[i])) for i in top if scores[i] > 0]

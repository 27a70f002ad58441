"""Hybrid retrieval: dense (VectorStore) and lexical (BM25) candidates fused into one ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag.lexical import LexicalIndex
from rag.ports import Embedder, VectorStore
from rag.query_cache import QueryVectorCache
from rag.types import Audience, ScoredChunk

Fusion = Literal["zscore", "convex", "weighted", "rrf", "dense", "bm25"]


@dataclass(frozen=True)
class RetrievalParams:
    candidates: int = 30
    fusion: Fusion = "zscore"
    dense_weight: float = 0.45
    rrf_k: int = 60
    # BM25 scores are unbounded; s / (s + half) maps them to [0, 1) with `half` scoring 0.5.
    bm25_half: float = 6.0
    # e5 cosine similarities live in a narrow band; this maps [floor, 1] to [0, 1].
    dense_floor: float = 0.70


def _dense_scaled(sim: float, p: RetrievalParams) -> float:
    return max(0.0, (sim - p.dense_floor) / (1.0 - p.dense_floor))


def _lexical_scaled(score: float, p: RetrievalParams) -> float:
    return score / (score + p.bm25_half) if score > 0 else 0.0


class HybridRetriever:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        lexical: LexicalIndex,
        params: RetrievalParams | None = None,
        query_vectors: QueryVectorCache | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.lexical = lexical
        self.params = params or RetrievalParams()
        self.query_vectors = query_vectors or QueryVectorCache(embedder)

    def retrieve(
        self,
        query: str,
        k: int,
        audiences: Sequence[Audience] = ("public",),
        params: RetrievalParams | None = None,
    ) -> list[ScoredChunk]:
        p = params or self.params
        dense: list[ScoredChunk] = []
        lexical: list[ScoredChunk] = []
        if p.fusion == "bm25":
            return fuse(dense, self.lexical.search(query, p.candidates, audiences), p)[:k]
        # BM25 costs under a millisecond at 10k chunks: running it beside the embedding is not worth a thread (0043).
        if p.fusion != "dense":
            lexical = self.lexical.search(query, p.candidates, audiences)
        dense = self.store.query(self.query_vectors.vector(query).tolist(), p.candidates, audiences)
        return fuse(dense, lexical, p)[:k]

    def close(self) -> None:
        self.query_vectors.close()


def fuse(dense: list[ScoredChunk], lexical: list[ScoredChunk], p: RetrievalParams) -> list[ScoredChunk]:
    """Fuse two candidate lists; every result carries both raw scores (missing ones at the list's floor)."""
    by_id = {s.chunk.id: s.chunk for s in [*dense, *lexical]}
    d = {s.chunk.id: s.score for s in dense}
    lx = {s.chunk.id: s.score for s in lexical}
    d_floor = min(d.values(), default=0.0)
    d_rank = {cid: i for i, cid in enumerate(d)}
    l_rank = {cid: i for i, cid in enumerate(lx)}
    d_norm, l_norm = _min_max(d), _min_max(lx)
    d_z, l_z = _standardised(d), _standardised(lx)
    d_z_floor, l_z_floor = min(d_z.values(), default=0.0), min(l_z.values(), default=0.0)
    out: list[ScoredChunk] = []
    for cid, chunk in by_id.items():
        ds = d.get(cid, d_floor)
        ls = lx.get(cid, 0.0)
        if p.fusion == "zscore":
            # A candidate one list missed counts as that list's worst, not as its mean.
            score = p.dense_weight * d_z.get(cid, d_z_floor) + (1 - p.dense_weight) * l_z.get(cid, l_z_floor)
        elif p.fusion == "convex":
            # Scales set per query travel to other corpora, where fixed BM25 and cosine scales do not (0007).
            score = p.dense_weight * d_norm.get(cid, 0.0) + (1 - p.dense_weight) * l_norm.get(cid, 0.0)
        elif p.fusion == "rrf":
            score = sum(1.0 / (p.rrf_k + r[cid] + 1) for r in (d_rank, l_rank) if cid in r)
        elif p.fusion == "dense":
            score = ds
        elif p.fusion == "bm25":
            score = ls
        else:
            score = p.dense_weight * _dense_scaled(ds, p) + (1 - p.dense_weight) * _lexical_scaled(ls, p)
        out.append(ScoredChunk(chunk, score, dense=ds if d else None, lexical=ls if lexical else None))
    out.sort(key=lambda s: (-s.score, s.chunk.id))
    return out


def _min_max(scores: dict[str, float]) -> dict[str, float]:
    """Each candidate list's scores mapped to [0, 1] within the list (its best is 1)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    return {cid: (s - lo) / (hi - lo) if hi > lo else 1.0 for cid, s in scores.items()}


def _standardised(scores: dict[str, float]) -> dict[str, float]:
    """Each candidate list's scores as standard scores within the list (mean 0, unit spread)."""
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    spread = (sum((s - mean) ** 2 for s in values) / len(values)) ** 0.5
    return {cid: (s - mean) / spread if spread > 0 else 0.0 for cid, s in scores.items()}


def confidence(best: ScoredChunk | None, p: RetrievalParams) -> float:
    """An absolute relevance estimate of the best hit in [0, 1], independent of the fusion used for ranking.

    Dense and lexical evidence count half each whatever the ranking's `dense_weight`: the abstention
    threshold is calibrated on this scale, and re-weighting the ranking must not move it."""
    if best is None:
        return 0.0
    ds = _dense_scaled(best.dense, p) if best.dense is not None else 0.0
    ls = _lexical_scaled(best.lexical, p) if best.lexical is not None else 0.0
    return 0.5 * ds + 0.5 * ls


def dedupe_documents(results: Sequence[ScoredChunk]) -> list[ScoredChunk]:
    """Keep each document's best chunk, in rank order."""
    seen: set[str] = set()
    out: list[ScoredChunk] = []
    for r in results:
        if r.chunk.doc_id not in seen:
            seen.add(r.chunk.doc_id)
            out.append(r)
    return out

"""Hybrid retrieval: how the dense and BM25 candidate lists are fused into one ranking."""

from __future__ import annotations

import pytest

from rag.retriever import RetrievalParams, confidence, fuse
from rag.types import Chunk, ScoredChunk


def hit(cid: str, score: float) -> ScoredChunk:
    return ScoredChunk(Chunk(cid, cid, cid, "", "text"), score)


def test_zscore_fusion_measures_each_score_by_the_spread_of_its_own_list() -> None:
    # c's runaway BM25 score is far from its list's mean in absolute terms, but measured in that list's spread it
    # is worth less than a's lead in the tight dense list: a comes first.
    dense = [hit("a", 0.90), hit("b", 0.88), hit("c", 0.86)]
    lexical = [hit("c", 60.0), hit("b", 12.0), hit("a", 11.0), hit("d", 10.0)]
    ranked = fuse(dense, lexical, RetrievalParams(fusion="zscore", dense_weight=0.5))

    # Dense: mean 0.88, spread sqrt(0.02**2 * 2 / 3). Lexical: mean 23.25, spread 21.22.
    d_spread = (0.0008 / 3) ** 0.5
    l_mean = 93.0 / 4
    l_spread = (sum((s - l_mean) ** 2 for s in (60.0, 12.0, 11.0, 10.0)) / 4) ** 0.5
    expected = {
        "a": 0.5 * (0.02 / d_spread) + 0.5 * (11.0 - l_mean) / l_spread,
        "b": 0.5 * 0.0 + 0.5 * (12.0 - l_mean) / l_spread,
        "c": 0.5 * (-0.02 / d_spread) + 0.5 * (60.0 - l_mean) / l_spread,
        # Missing from the dense list: it counts as that list's worst, not its average.
        "d": 0.5 * (-0.02 / d_spread) + 0.5 * (10.0 - l_mean) / l_spread,
    }
    assert {s.chunk.id: s.score for s in ranked} == pytest.approx(expected)
    assert [s.chunk.id for s in ranked] == ["a", "c", "b", "d"]


def test_zscore_fusion_of_a_one_candidate_list_leaves_the_order_to_the_other_list() -> None:
    ranked = fuse([hit("a", 0.80), hit("b", 0.90)], [hit("a", 3.0)], RetrievalParams(fusion="zscore"))

    assert [s.chunk.id for s in ranked] == ["b", "a"]


def test_the_dense_weight_moves_zscore_fusion_towards_one_list() -> None:
    dense = [hit("a", 0.90), hit("b", 0.80)]
    lexical = [hit("b", 9.0), hit("a", 8.0)]

    towards_bm25 = fuse(dense, lexical, RetrievalParams(fusion="zscore", dense_weight=0.3))
    towards_dense = fuse(dense, lexical, RetrievalParams(fusion="zscore", dense_weight=0.7))

    assert [s.chunk.id for s in towards_bm25] == ["b", "a"]
    assert [s.chunk.id for s in towards_dense] == ["a", "b"]


def test_the_abstention_confidence_does_not_depend_on_the_ranking_weight() -> None:
    best = ScoredChunk(Chunk("a", "a", "a", "", "text"), 1.0, dense=0.85, lexical=6.0)

    values = {w: confidence(best, RetrievalParams(fusion="zscore", dense_weight=w)) for w in (0.3, 0.45, 0.7)}

    # Half the scaled cosine ((0.85 - 0.70) / 0.30) and half the scaled BM25 (6 / (6 + 6)).
    assert values == pytest.approx({w: 0.5 * 0.5 + 0.5 * 0.5 for w in values})

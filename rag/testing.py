"""Deterministic retrieval doubles for tests: no model, no download, same Protocols."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from rag.text import content_terms


class HashingEmbedder:
    """Hashes stemmed terms into a fixed-size unit vector: texts sharing words are similar, nothing is learnt."""

    def __init__(self, dimension: int = 256) -> None:
        self._dim = dimension

    @property
    def model_id(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dimension(self) -> int:
        return self._dim

    def warm_up(self) -> None:
        return None

    def _embed(self, text: str) -> list[float]:
        vec = [0.0] * self._dim
        for term in content_terms(text):
            h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest(), "little")
            vec[h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vec))
        if norm == 0:
            vec[0] = 1.0
            return vec
        return [x / norm for x in vec]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

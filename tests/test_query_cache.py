"""The query-vector cache: repeated questions skip the embedder, within a bound, under a normalised key."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from backing_services import RedisKeys

from rag.index import KnowledgeIndex
from rag.query_cache import QueryVectorCache, RedisVectors, query_key
from rag.testing import HashingEmbedder
from rag.types import Document
from rag.vectorstores import InMemoryVectorStore


class RecordingEmbedder(HashingEmbedder):
    """Embeds like the hashing double and records every query text it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.queries.extend(texts)
        return super().embed_queries(texts)


class DictVectors:
    """A shared store held in a dict, standing in for Redis."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def get(self, key: str) -> np.ndarray | None:
        return self.vectors.get(key)

    def put(self, key: str, vector: np.ndarray) -> None:
        self.vectors[key] = vector

    def close(self) -> None:
        return None


@pytest.fixture
def embedder() -> RecordingEmbedder:
    return RecordingEmbedder()


def test_a_repeated_question_is_embedded_once(embedder: RecordingEmbedder) -> None:
    cache = QueryVectorCache(embedder, size=8)

    first = cache.vector("Como emitir a segunda via do IPTU?")
    again = cache.vector("Como emitir a segunda via do IPTU?")

    assert embedder.queries == ["Como emitir a segunda via do IPTU?"]
    assert np.array_equal(first, again)
    assert (cache.hits, cache.misses) == (1, 1)


def test_spacing_and_unicode_forms_of_a_question_share_one_vector(embedder: RecordingEmbedder) -> None:
    cache = QueryVectorCache(embedder, size=8)
    composed = "Onde tomo a vacinação?"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed

    cache.vector(composed)
    cache.vector(f"  {decomposed.replace(' ', '  ')}\n")
    cache.vector("Onde\ttomo a vacinação? ")

    assert embedder.queries == [composed]


def test_the_normalised_question_is_what_gets_embedded_so_the_vector_does_not_depend_on_who_asked_first(
    embedder: RecordingEmbedder,
) -> None:
    QueryVectorCache(embedder, size=8).vector("  horário   do posto ")
    QueryVectorCache(embedder, size=0).vector("horário do posto")

    assert embedder.queries == ["horário do posto", "horário do posto"]


def test_questions_differing_in_case_are_different_queries(embedder: RecordingEmbedder) -> None:
    cache = QueryVectorCache(embedder, size=8)

    cache.vector("IPTU atrasado")
    cache.vector("iptu atrasado")

    assert embedder.queries == ["IPTU atrasado", "iptu atrasado"]
    assert query_key("IPTU atrasado") != query_key("iptu atrasado")


def test_the_cache_keeps_only_the_most_recently_used_questions(embedder: RecordingEmbedder) -> None:
    cache = QueryVectorCache(embedder, size=2)

    for question in ["a matrícula", "o IPTU", "a matrícula", "a vacina", "a matrícula", "o IPTU"]:
        cache.vector(question)

    # "o IPTU" was the least recently used when "a vacina" came in, so it had to be embedded again.
    assert embedder.queries == ["a matrícula", "o IPTU", "a vacina", "o IPTU"]
    assert len(cache) == 2


def test_a_cache_of_size_zero_embeds_every_time(embedder: RecordingEmbedder) -> None:
    cache = QueryVectorCache(embedder, size=0)

    cache.vector("o IPTU")
    cache.vector("o IPTU")

    assert embedder.queries == ["o IPTU", "o IPTU"]
    assert len(cache) == 0


def test_a_negative_size_is_refused(embedder: RecordingEmbedder) -> None:
    with pytest.raises(ValueError, match="negative"):
        QueryVectorCache(embedder, size=-1)


def test_a_cached_vector_cannot_be_changed_by_a_caller(embedder: RecordingEmbedder) -> None:
    vector = QueryVectorCache(embedder, size=8).vector("o IPTU")

    with pytest.raises(ValueError, match="read-only"):
        vector[0] = 1.0


def test_a_vector_another_process_embedded_is_taken_from_the_shared_store(embedder: RecordingEmbedder) -> None:
    shared = DictVectors()
    QueryVectorCache(embedder, size=8, shared=shared).vector("o IPTU")
    other_process = QueryVectorCache(embedder, size=8, shared=shared)

    vector = other_process.vector("o IPTU")

    assert embedder.queries == ["o IPTU"]
    assert np.array_equal(vector, shared.vectors["o IPTU"])


def test_a_shared_vector_of_the_wrong_size_is_embedded_again(embedder: RecordingEmbedder) -> None:
    shared = DictVectors()
    shared.vectors["o IPTU"] = np.zeros(3, dtype=np.float32)

    vector = QueryVectorCache(embedder, size=8, shared=shared).vector("o IPTU")

    assert embedder.queries == ["o IPTU"]
    assert vector.shape == (embedder.dimension,)
    assert shared.vectors["o IPTU"].shape == (embedder.dimension,)


IPTU = Document("iptu", "Segunda via do IPTU", "Emita a segunda via do boleto do imposto predial no portal.")
VACINA = Document("vacina", "Vacinação contra a gripe", "A vacina contra a gripe é aplicada nas unidades de saúde.")


def test_the_retriever_answers_a_repeated_question_from_the_cache_with_the_same_ranking(
    embedder: RecordingEmbedder,
) -> None:
    index = KnowledgeIndex(embedder, InMemoryVectorStore())
    index.warm_up()
    index.sync([IPTU, VACINA])

    cold = index.retrieve("segunda via do boleto do IPTU", k=5)
    warm = index.retrieve("segunda via do boleto do IPTU ", k=5)
    index.close()

    assert embedder.queries == ["segunda via do boleto do IPTU"]
    assert [(h.chunk.id, h.score) for h in warm] == [(h.chunk.id, h.score) for h in cold]
    assert cold[0].chunk.doc_id == "iptu"


@pytest.fixture
def redis_vectors(redis_keys: RedisKeys) -> Iterator[RedisVectors]:
    vectors = RedisVectors(redis_keys.url, prefix=f"{redis_keys.prefix}qvec:", ttl_s=60)
    yield vectors
    vectors.close()


@pytest.mark.integration
def test_vectors_shared_through_redis_come_back_exactly_and_expire(redis_vectors: RedisVectors) -> None:
    vector = np.linspace(-1, 1, 384, dtype=np.float32)

    redis_vectors.put("o IPTU", vector)

    back = redis_vectors.get("o IPTU")
    assert back is not None
    assert np.array_equal(back, vector)
    assert redis_vectors.get("a vacina") is None
    ttl = redis_vectors._redis.ttl(redis_vectors._key("o IPTU"))
    assert 0 < ttl <= 60


def test_an_unreachable_redis_is_a_miss_and_retrieval_still_embeds(
    embedder: RecordingEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1 of the loopback: the connection is refused at once.
    shared = RedisVectors("redis://127.0.0.1:1/0", prefix="test:", ttl_s=60)
    cache = QueryVectorCache(embedder, size=8, shared=shared)

    with caplog.at_level(logging.WARNING, logger="rag.query_cache"):
        vector = cache.vector("o IPTU")
        cache.vector("a vacina")
    shared.close()

    assert vector.shape == (embedder.dimension,)
    assert embedder.queries == ["o IPTU", "a vacina"]
    # Logged once, not for every question.
    assert len([r for r in caplog.records if "Redis unavailable" in r.getMessage()]) == 1

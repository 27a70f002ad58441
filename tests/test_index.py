"""KnowledgeIndex keeps the vector store and the BM25 index in step with the documents; LexicalIndex behaviour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from rag.index import KnowledgeIndex
from rag.lexical import LexicalIndex
from rag.retriever import RetrievalParams
from rag.testing import HashingEmbedder
from rag.types import Audience, Chunk, Document
from rag.vectorstores import InMemoryVectorStore

DENSE = RetrievalParams(fusion="dense")
BM25 = RetrievalParams(fusion="bm25")


class CountingEmbedder:
    """Records every batch of passages it embeds, to tell what a sync re-embedded."""

    def __init__(self) -> None:
        self._inner = HashingEmbedder()
        self.passage_batches: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def warm_up(self) -> None:
        self._inner.warm_up()

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.passage_batches.append(list(texts))
        return self._inner.embed_passages(texts)

    @property
    def passages(self) -> list[str]:
        return [text for batch in self.passage_batches for text in batch]


IPTU = Document(
    id="iptu",
    title="Segunda via do IPTU",
    text=(
        "Emita a segunda via do boleto do imposto predial no portal do contribuinte.\n\n"
        "## Parcelamento\n\nO IPTU atrasado pode ser parcelado em até dez vezes no atendimento presencial.\n\n"
        "## Isenção\n\nAposentados com um único imóvel podem pedir isenção até março."
    ),
)
VACINA = Document(
    id="vacina",
    title="Vacinação contra a gripe",
    text="A vacina contra a gripe é aplicada nas unidades básicas de saúde de segunda a sexta.",
)
MATRICULA = Document(
    id="matricula",
    title="Matrícula escolar",
    text="A matrícula na rede municipal exige certidão de nascimento e comprovante de residência.",
)
DOCS = [IPTU, VACINA, MATRICULA]


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def index(embedder: CountingEmbedder) -> KnowledgeIndex:
    built = KnowledgeIndex(embedder, InMemoryVectorStore())
    built.warm_up()
    return built


def doc_ids(
    index: KnowledgeIndex, query: str, params: RetrievalParams, audiences: Sequence[Audience] = ("public",)
) -> set[str]:
    return {r.chunk.doc_id for r in index.retrieve(query, k=20, audiences=audiences, params=params)}


def texts_of(index: KnowledgeIndex, doc_id: str) -> str:
    return "\n".join(c.text for c in index.store.all_chunks() if c.doc_id == doc_id)


def test_the_first_sync_adds_every_document(index: KnowledgeIndex) -> None:
    report = index.sync(DOCS)

    assert report.added == ["iptu", "vacina", "matricula"]
    assert (report.updated, report.deleted, report.unchanged) == ([], [], 0)
    assert report.chunks == index.store.count() == len(index.lexical)
    assert set(index.store.document_hashes()) == {"iptu", "vacina", "matricula"}
    assert index.document_title("vacina") == "Vacinação contra a gripe"


def test_syncing_the_same_documents_again_embeds_nothing(index: KnowledgeIndex, embedder: CountingEmbedder) -> None:
    index.sync(DOCS)
    embedder.passage_batches.clear()

    report = index.sync(DOCS)

    assert report.unchanged == 3
    assert (report.added, report.updated, report.deleted) == ([], [], [])
    assert embedder.passage_batches == []


def test_a_changed_document_is_re_embedded_alone_and_its_old_chunks_are_gone(
    index: KnowledgeIndex, embedder: CountingEmbedder
) -> None:
    index.sync(DOCS)
    assert "isenção" in texts_of(index, "iptu").lower()
    embedder.passage_batches.clear()
    without_exemption = replace(IPTU, text=IPTU.text.split("\n\n## Isenção")[0])

    report = index.sync([without_exemption, VACINA, MATRICULA])

    assert report.updated == ["iptu"]
    assert report.unchanged == 2
    assert embedder.passages
    assert all(text.startswith(IPTU.title) for text in embedder.passages)
    assert "isenção" not in texts_of(index, "iptu").lower()
    assert "aposentados" not in " ".join(c.text.lower() for c in index.lexical.chunks_of("iptu"))
    assert "iptu" not in doc_ids(index, "aposentados imóvel", BM25)
    assert index.store.document_hashes()["iptu"] == index.index_hash(without_exemption)


def test_a_document_no_longer_present_disappears_from_dense_and_lexical_results(index: KnowledgeIndex) -> None:
    index.sync(DOCS)
    assert "vacina" in doc_ids(index, "vacina gripe", DENSE)
    assert "vacina" in doc_ids(index, "vacina gripe", BM25)

    report = index.sync([IPTU, MATRICULA])

    assert report.deleted == ["vacina"]
    assert "vacina" not in doc_ids(index, "vacina gripe", DENSE)
    assert "vacina" not in doc_ids(index, "vacina gripe", BM25)
    assert index.lexical.chunks_of("vacina") == []
    assert index.document_title("vacina") is None


def test_without_prune_documents_left_out_of_a_sync_are_kept(index: KnowledgeIndex) -> None:
    index.sync(DOCS)
    changed = replace(MATRICULA, text=MATRICULA.text + " Inscrições em janeiro.")

    report = index.sync([changed], prune=False)

    assert report.deleted == []
    assert report.updated == ["matricula"]
    assert set(index.store.document_hashes()) == {"iptu", "vacina", "matricula"}
    assert "vacina" in doc_ids(index, "vacina gripe", BM25)


def test_making_a_document_internal_re_indexes_it_and_hides_it_from_citizens(
    index: KnowledgeIndex, embedder: CountingEmbedder
) -> None:
    index.sync(DOCS)
    assert "vacina" in doc_ids(index, "vacina gripe", DENSE)
    embedder.passage_batches.clear()

    report = index.sync([IPTU, replace(VACINA, audience="internal"), MATRICULA])

    assert report.updated == ["vacina"]
    assert embedder.passages
    assert {c.audience for c in index.store.all_chunks() if c.doc_id == "vacina"} == {"internal"}
    for params in (DENSE, BM25, RetrievalParams()):
        assert "vacina" not in doc_ids(index, "vacina gripe", params)
        assert "vacina" in doc_ids(index, "vacina gripe", params, audiences=("public", "internal"))


def test_the_lexical_index_is_rebuilt_after_a_sync(index: KnowledgeIndex) -> None:
    index.sync(DOCS)
    assert index.lexical.search("zoonoses", k=5) == []
    castracao = Document(
        id="castracao",
        title="Castração de cães e gatos",
        text="O centro de zoonoses agenda a castração gratuita de animais.",
    )

    index.sync([*DOCS, castracao])

    assert [r.chunk.doc_id for r in index.lexical.search("zoonoses", k=5)] == ["castracao"]
    assert doc_ids(index, "zoonoses", BM25) == {"castracao"}


# --------------------------------------------------------------------------- LexicalIndex


def lexical(*texts: str, audience: Audience = "public") -> LexicalIndex:
    index = LexicalIndex()
    index.build(
        [
            Chunk(id=f"c{i}", doc_id=f"d{i}", title="Serviço", section="", text=t, audience=audience)
            for i, t in enumerate(texts)
        ]
    )
    return index


def found(index: LexicalIndex, query: str) -> list[str]:
    return [r.chunk.text for r in index.search(query, k=5)]


CORPUS = (
    "Matrícula escolar na rede municipal.",
    "Vacinação contra a gripe nas unidades de saúde.",
    "Cada vacina tem um calendário.",
    "Agendamento de consulta médica pelo telefone.",
)


def test_search_ignores_accents_in_both_directions() -> None:
    index = lexical(*CORPUS, "Emissão de certidao negativa.")

    assert found(index, "matricula") == ["Matrícula escolar na rede municipal."]
    assert found(index, "certidão") == ["Emissão de certidao negativa."]


def test_search_matches_other_forms_of_a_word_that_share_its_stem() -> None:
    index = lexical(*CORPUS)

    assert set(found(index, "vacinas")) == {
        "Cada vacina tem um calendário.",
        "Vacinação contra a gripe nas unidades de saúde.",
    }
    assert found(index, "agendar") == ["Agendamento de consulta médica pelo telefone."]
    assert found(index, "matrículas") == ["Matrícula escolar na rede municipal."]
    assert "Vacinação contra a gripe nas unidades de saúde." in found(index, "vacinacao")


def test_search_matches_a_plural_noun_with_the_action_noun_of_the_same_family() -> None:
    assert "Vacinação contra a gripe nas unidades de saúde." in found(lexical(*CORPUS), "vacinas")


def test_a_query_of_stopwords_only_finds_nothing() -> None:
    assert found(lexical(*CORPUS), "o que é de para com a") == []


def test_a_query_of_unknown_words_finds_nothing() -> None:
    assert found(lexical(*CORPUS), "xilofone quasar") == []


def test_internal_chunks_are_found_only_when_asked_for() -> None:
    index = lexical("Procedimento interno de matrícula.", audience="internal")

    assert index.search("matricula", k=5) == []
    assert len(index.search("matricula", k=5, audiences=("internal",))) == 1


def test_an_empty_lexical_index_finds_nothing() -> None:
    assert found(lexical(), "matricula") == []


def test_k_larger_than_the_corpus_returns_only_matching_chunks_best_first() -> None:
    index = lexical("Vacina.", "Vacina e vacinas, vacina sempre.", "Outro assunto.")

    results = index.search("vacina", k=50)

    assert [r.chunk.id for r in results] == ["c1", "c0"]
    assert results[0].score > results[1].score > 0
    assert all(r.lexical == r.score for r in results)

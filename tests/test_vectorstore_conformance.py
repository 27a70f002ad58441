"""One conformance suite for every VectorStore: in memory, Chroma on a local directory, a real Chroma server."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from backing_services import service_unavailable

from rag.ports import VectorStore
from rag.types import Chunk
from rag.vectorstores import ChromaVectorStore, InMemoryVectorStore

# A cold Chroma server is ready in a second or two here; the margin covers a loaded CI machine.
CHROMA_START_DEADLINE_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_ready(proc: subprocess.Popen[bytes], heartbeat: str, deadline_s: float) -> str | None:
    """Poll the heartbeat until it answers; returns why the server is not ready, or None when it is."""
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(heartbeat).status_code == 200:
                    return None
            except httpx.TransportError:
                pass
            # Waiting on the process paces the polling and notices at once when the server dies.
            try:
                code = proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            return f"the server exited with code {code}"
    return f"no heartbeat within {deadline_s:.0f}s"


@pytest.fixture(scope="session")
def chroma_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` on loopback, shared by the session; each test keeps to its own collection."""
    exe = Path(sys.executable).with_name("chroma")
    if not exe.is_file():
        service_unavailable("the Chroma server", f"{exe} is not installed")
    root = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (root / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(exe), "run", "--path", str(root / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Chroma's opt-out switch: tests talk to loopback only.
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        try:
            problem = _wait_until_ready(proc, f"{url}/api/v2/heartbeat", CHROMA_START_DEADLINE_S)
            if problem is not None:
                tail = (root / "server.log").read_text(errors="replace")[-2000:]
                service_unavailable("the Chroma server", f"{problem}; log tail:\n{tail}")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class StoreKind:
    """Opens handles on one storage; for a persistent kind a second `open()` sees what the first wrote."""

    open: Callable[[], VectorStore]


@pytest.fixture(
    params=[
        "memory",
        "chroma-path",
        pytest.param("chroma-http", marks=pytest.mark.integration),
    ]
)
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKind:
    # A collection per test keeps tests apart on the shared server.
    collection = f"t-{uuid.uuid4().hex}"
    if request.param == "memory":
        memory = InMemoryVectorStore()
        return StoreKind(lambda: memory)
    if request.param == "chroma-path":
        path = tmp_path / "chroma"
        return StoreKind(lambda: ChromaVectorStore(path=path, collection=collection))
    url = request.getfixturevalue("chroma_server_url")
    return StoreKind(lambda: ChromaVectorStore(url=url, collection=collection))


@pytest.fixture
def store(store_kind: StoreKind) -> Iterator[VectorStore]:
    opened = store_kind.open()
    opened.warm_up()
    yield opened
    opened.close()


def chunk(doc_id: str, position: int, **fields: object) -> Chunk:
    values: dict[str, object] = {
        "id": f"{doc_id}#{position}",
        "doc_id": doc_id,
        "title": f"Título de {doc_id}",
        "section": "",
        "text": f"Trecho {position} de {doc_id}",
        "position": position,
        "doc_hash": f"hash-{doc_id}",
    }
    values.update(fields)
    return Chunk(**values)  # type: ignore[arg-type]


# Axis-aligned vectors make the expected cosine similarities exact and the ranking unambiguous.
E1 = [1.0, 0.0, 0.0, 0.0]
E2 = [0.0, 1.0, 0.0, 0.0]
E3 = [0.0, 0.0, 1.0, 0.0]
E4 = [0.0, 0.0, 0.0, 1.0]
NEAR_E1 = [0.9, 0.1, 0.0, 0.0]
MINUS_E1 = [-1.0, 0.0, 0.0, 0.0]


def test_query_returns_the_nearest_chunks_first_with_cosine_similarity(store: VectorStore) -> None:
    same, near, orthogonal, opposite = chunk("a", 0), chunk("b", 0), chunk("c", 0), chunk("d", 0)
    store.upsert([orthogonal, opposite, same, near], [E2, MINUS_E1, E1, NEAR_E1])

    results = store.query(E1, k=4)

    assert [r.chunk.id for r in results] == [same.id, near.id, orthogonal.id, opposite.id]
    assert all(-1.0 <= r.score <= 1.0 for r in results)
    assert all(r.dense == r.score for r in results)
    scores = [r.score for r in results]
    expected = [1.0, 0.9 / math.hypot(0.9, 0.1), 0.0, -1.0]
    assert scores == pytest.approx(expected, abs=1e-5)


def test_similarity_ignores_vector_length(store: VectorStore) -> None:
    store.upsert([chunk("a", 0)], [[3.0, 0.0, 0.0, 0.0]])

    assert store.query([0.5, 0.0, 0.0, 0.0], k=1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_internal_chunks_are_excluded_unless_their_audience_is_asked_for(store: VectorStore) -> None:
    public, internal = chunk("public-doc", 0), chunk("staff-doc", 0, audience="internal")
    store.upsert([public, internal], [E1, NEAR_E1])

    assert [r.chunk.id for r in store.query(E1, k=10)] == [public.id]
    assert [r.chunk.id for r in store.query(E1, k=10, audiences=("public",))] == [public.id]
    assert [r.chunk.id for r in store.query(E1, k=10, audiences=("internal",))] == [internal.id]
    both = store.query(E1, k=10, audiences=("public", "internal"))
    assert [r.chunk.id for r in both] == [public.id, internal.id]


def test_upserting_an_existing_id_replaces_the_chunk(store: VectorStore) -> None:
    store.upsert([chunk("a", 0), chunk("b", 0)], [E1, E2])

    store.upsert([chunk("a", 0, text="Texto novo", doc_hash="hash-novo")], [E3])

    assert store.count() == 2
    hit = store.query(E3, k=1)[0]
    assert hit.chunk.id == "a#0"
    assert hit.chunk.text == "Texto novo"
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert store.document_hashes() == {"a": "hash-novo", "b": "hash-b"}


def test_deleting_documents_removes_all_their_chunks_and_nothing_else(store: VectorStore) -> None:
    store.upsert(
        [chunk("a", 0), chunk("a", 1), chunk("b", 0), chunk("b", 1), chunk("c", 0)],
        [E1, E2, E3, E4, NEAR_E1],
    )

    store.delete_documents(["a", "c", "not-indexed"])

    assert store.count() == 2
    assert [c.id for c in store.all_chunks()] == ["b#0", "b#1"]
    assert store.document_hashes() == {"b": "hash-b"}
    assert {r.chunk.doc_id for r in store.query(E1, k=10)} == {"b"}


def test_deleting_no_documents_changes_nothing(store: VectorStore) -> None:
    store.upsert([chunk("a", 0)], [E1])

    store.delete_documents([])

    assert store.count() == 1


def test_all_chunks_round_trips_every_field_sorted_by_document_and_position(store: VectorStore) -> None:
    rich = [
        chunk(
            "zeta",
            12,
            title="Matrícula escolar — rede municipal",
            section="Documentos > Pessoa física",
            text="Leve RG, CPF e comprovante de residência.\n\n| Item | Prazo |\n|---|---|\n| RG | já |",
            audience="internal",
            source="knowledge/educacao/matricula.md",
            url="https://prefeitura.example/matricula",
            doc_hash="3f" * 32,
        ),
        chunk("zeta", 2, section="Prazo", text="Até 5 dias úteis."),
        chunk("alfa", 0, source="knowledge/iptu.md", url="https://prefeitura.example/iptu"),
        chunk("alfa", 10, section="Atendimento presencial"),
    ]
    store.upsert(rich, [E1, E2, E3, E4])

    got = store.all_chunks()

    # Numeric, not textual, order of positions: 2 before 12, 0 before 10.
    assert got == [rich[2], rich[3], rich[1], rich[0]]


def test_document_hashes_maps_each_document_to_its_hash(store: VectorStore) -> None:
    store.upsert(
        [chunk("a", 0, doc_hash="h-a"), chunk("a", 1, doc_hash="h-a"), chunk("b", 0, doc_hash="h-b")],
        [E1, E2, E3],
    )

    assert store.document_hashes() == {"a": "h-a", "b": "h-b"}


def test_count_counts_chunks(store: VectorStore) -> None:
    assert store.count() == 0

    store.upsert([chunk("a", 0), chunk("a", 1), chunk("b", 0)], [E1, E2, E3])

    assert store.count() == 3


def test_an_empty_store_answers_with_nothing(store: VectorStore) -> None:
    store.upsert([], [])

    assert store.query(E1, k=5) == []
    assert store.all_chunks() == []
    assert store.document_hashes() == {}
    assert store.count() == 0


def test_k_larger_than_the_collection_returns_every_allowed_chunk(store: VectorStore) -> None:
    store.upsert([chunk("a", 0), chunk("b", 0), chunk("c", 0, audience="internal")], [E1, E2, E3])

    assert [r.chunk.id for r in store.query(E1, k=50)] == ["a#0", "b#0"]
    assert len(store.query(E1, k=50, audiences=("public", "internal"))) == 3


def test_k_zero_returns_nothing(store: VectorStore) -> None:
    store.upsert([chunk("a", 0)], [E1])

    assert store.query(E1, k=0) == []


def test_chunks_and_embeddings_of_different_lengths_are_refused(store: VectorStore) -> None:
    with pytest.raises(ValueError, match="length"):
        store.upsert([chunk("a", 0), chunk("b", 0)], [E1])

    assert store.count() == 0


@pytest.mark.parametrize(
    "store_kind",
    ["chroma-path", pytest.param("chroma-http", marks=pytest.mark.integration)],
    indirect=True,
)
def test_a_new_store_on_the_same_storage_sees_the_data(store_kind: StoreKind) -> None:
    first = store_kind.open()
    written = [chunk("a", 0, audience="internal"), chunk("a", 1), chunk("b", 0)]
    first.upsert(written, [E1, E2, E3])
    # Closing releases the local directory, so the second store really reads it back from disk.
    first.close()

    second = store_kind.open()
    try:
        assert second.all_chunks() == written
        assert second.document_hashes() == {"a": "hash-a", "b": "hash-b"}
        assert [r.chunk.id for r in second.query(E2, k=1)] == ["a#1"]
    finally:
        second.close()


def test_a_replaced_chunk_keeps_only_its_new_vector(store: VectorStore) -> None:
    store.upsert([chunk("a", 0)], [E1])

    store.upsert([replace(chunk("a", 0), text="movido")], [E2])

    assert [r.chunk.text for r in store.query(E2, k=5)] == ["movido"]
    assert store.query(E1, k=5)[0].score == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize(
    "store_kind",
    ["chroma-path", pytest.param("chroma-http", marks=pytest.mark.integration)],
    indirect=True,
)
def test_a_query_reads_whole_chunks_that_another_handle_wrote(store_kind: StoreKind) -> None:
    first = store_kind.open()
    written = [chunk("a", 0, audience="internal", url="https://x.example/a"), chunk("a", 1), chunk("b", 0)]
    first.upsert(written, [E1, E2, E3])
    first.close()

    second = store_kind.open()
    try:
        # No all_chunks() first: the handle has never seen these chunks when the query finds them.
        assert [r.chunk for r in second.query(E1, k=1, audiences=("internal",))] == [written[0]]
        assert [r.chunk for r in second.query(E2, k=2)] == [written[1], written[2]]
    finally:
        second.close()

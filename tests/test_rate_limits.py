"""Limits on anonymous citizen traffic over the real app: per IP, per conversation, the answer queue, the puzzle."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from backing_services import RedisKeys
from conftest import make_services
from fastapi.testclient import TestClient
from helpers import first_sentence_of, sse_events

from assistant.llm import ChatMessage
from assistant.testing import ScriptedChatModel
from atende.answer_gate import AnswerGate
from atende.app import create_app
from atende.challenge import HEADER, leading_zero_bits, solve
from atende.ratelimits import LIMITED_ROUTES, wait_text
from atende.services import Services
from core.i18n import t
from core.settings import Settings
from rag.types import Document

QUESTION = "Como emito a segunda via do boleto do IPTU?"


@contextmanager
def app_client(
    settings: Settings, docs: list[Document], model: ScriptedChatModel | None = None
) -> Iterator[tuple[TestClient, Services]]:
    services = make_services(settings, model or ScriptedChatModel([]), docs)
    try:
        with TestClient(create_app(services=services), base_url="https://testserver") as client:
            yield client, services
    finally:
        services.close()


@pytest.fixture
def limited(
    request: pytest.FixtureRequest, test_settings: Settings, knowledge_documents: list[Document]
) -> Iterator[tuple[TestClient, Services]]:
    """The app with the settings a test names in `@pytest.mark.parametrize("limited", [{...}], indirect=True)`."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    with app_client(test_settings.model_copy(update=overrides), knowledge_documents) as app:
        yield app


def new_conversation(client: TestClient) -> str:
    response = client.post("/api/conversations")
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


def assert_rate_limited(response: Any, code: str = "rate_limited") -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert "Aguarde" in body["detail"] or "Tente de novo" in body["detail"]
    return body


# Per address and per conversation


def test_the_eleventh_conversation_from_one_address_within_a_minute_is_refused_in_portuguese(
    limited: tuple[TestClient, Services],
) -> None:
    client, _ = limited
    for _ in range(10):
        new_conversation(client)

    refused = client.post("/api/conversations")

    body = assert_rate_limited(refused)
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert body["detail"] == t("limits.conversations_per_ip", wait=wait_text(retry))


@pytest.mark.parametrize("limited", [{"limit_messages_per_conversation": 3}], indirect=True)
def test_messages_to_one_conversation_are_limited_and_the_streamed_route_shares_the_count(
    limited: tuple[TestClient, Services],
) -> None:
    client, _ = limited
    cid = new_conversation(client)
    for _ in range(2):
        assert client.post(f"/api/conversations/{cid}/messages", json={"text": "oi"}).status_code == 200
    assert client.post(f"/api/conversations/{cid}/messages/stream", json={"text": "obrigado"}).status_code == 200

    refused = client.post(f"/api/conversations/{cid}/messages", json={"text": "oi"})

    body = assert_rate_limited(refused)
    assert body["detail"].startswith("Você enviou muitas mensagens")
    assert_rate_limited(client.post(f"/api/conversations/{cid}/messages/stream", json={"text": "oi"}))
    other = new_conversation(client)
    assert client.post(f"/api/conversations/{other}/messages", json={"text": "oi"}).status_code == 200


@pytest.mark.parametrize("limited", [{"limit_conversations_per_ip": 0, "limit_handoffs_per_ip": 3}], indirect=True)
def test_a_handoff_flood_from_one_address_is_refused_and_the_queue_holds_only_the_allowed_ones(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    conversations = [new_conversation(client) for _ in range(8)]

    answers = [client.post(f"/api/conversations/{cid}/handoff") for cid in conversations]

    assert [a.status_code for a in answers] == [200] * 3 + [429] * 5
    assert_rate_limited(answers[-1])
    assert services.handoff is not None
    assert services.handoff.live.queue(services.settings.handoff_default_team) == conversations[:3]


@pytest.mark.parametrize("limited", [{"limit_conversations_per_ip": 0, "limit_handoffs_per_ip": 3}], indirect=True)
def test_asking_for_a_person_in_a_message_counts_as_a_handoff_request(limited: tuple[TestClient, Services]) -> None:
    client, services = limited
    conversations = [new_conversation(client) for _ in range(5)]
    ask = {"text": "quero falar com um atendente"}

    answers = [client.post(f"/api/conversations/{cid}/messages", json=ask) for cid in conversations]

    assert [a.status_code for a in answers] == [200] * 3 + [429] * 2
    assert all(a.json()["decision"] == "handoff" for a in answers[:3])
    assert t("limits.handoffs_per_ip", wait="").split("Aguarde")[0] in answers[-1].json()["detail"]
    assert services.handoff is not None
    assert services.handoff.live.queue(services.settings.handoff_default_team) == conversations[:3]
    # Already in the queue: the same words are a message for the agent, not another request.
    again = client.post(f"/api/conversations/{conversations[0]}/messages", json=ask)
    assert again.status_code == 200


@pytest.mark.parametrize("limited", [{"limit_handoffs_per_conversation": 2}], indirect=True)
def test_one_conversation_cannot_rejoin_the_queue_over_and_over(limited: tuple[TestClient, Services]) -> None:
    client, _ = limited
    cid = new_conversation(client)
    for _ in range(2):
        assert client.post(f"/api/conversations/{cid}/handoff").status_code == 200
        assert client.delete(f"/api/conversations/{cid}/handoff").status_code == 200

    assert_rate_limited(client.post(f"/api/conversations/{cid}/handoff"))


def test_every_limited_route_exists_in_the_app(limited: tuple[TestClient, Services]) -> None:
    client, _ = limited
    from core.accounts.access import iter_routes

    routes = {(r.method, r.path) for r in iter_routes(client.app)}  # type: ignore[arg-type]
    assert set(LIMITED_ROUTES) <= routes


@pytest.mark.integration
def test_the_limits_are_shared_by_two_app_processes_through_redis(
    test_settings: Settings, knowledge_documents: list[Document], redis_keys: RedisKeys
) -> None:
    settings = test_settings.model_copy(update={"redis_url": redis_keys.url, "handoff_redis_prefix": redis_keys.prefix})
    elsewhere = settings.model_copy(update={"data_dir": settings.data_dir.parent / "second"})
    with app_client(settings, knowledge_documents) as one, app_client(elsewhere, knowledge_documents) as other:
        first, second = one[0], other[0]
        for n in range(10):
            new_conversation(first if n % 2 else second)

        assert_rate_limited(first.post("/api/conversations"))
        assert_rate_limited(second.post("/api/conversations"))


# The answer queue


class Held:
    """A model step that blocks until the test lets it answer (no sleeps: threading events)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.release = threading.Event()

    def __call__(self, messages: Sequence[ChatMessage]) -> str:
        assert self.release.wait(10), "the test never released the model"
        result: str = self.answer(messages)
        return result


@pytest.fixture
def queued(test_settings: Settings, knowledge_documents: list[Document]) -> Iterator[tuple[TestClient, Services, Held]]:
    held = Held(first_sentence_of(1))
    model = ScriptedChatModel([held] * 3)
    settings = test_settings.model_copy(update={"answer_concurrency": 1, "answer_queue_max": 2})
    with app_client(settings, knowledge_documents, model) as (client, services):
        yield client, services, held
    model.assert_consumed()


def test_a_question_past_the_answer_queue_is_refused_at_once_while_the_admitted_ones_are_answered(
    queued: tuple[TestClient, Services, Held],
) -> None:
    client, services, held = queued
    gate = services.answer_gate
    conversations = [new_conversation(client) for _ in range(4)]
    results: dict[int, Any] = {}

    def ask(n: int) -> None:
        results[n] = client.post(f"/api/conversations/{conversations[n]}/messages", json={"text": QUESTION})

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(3)]
    workers[0].start()
    assert gate.wait_for(active=1, waiting=0)
    for worker in workers[1:]:
        worker.start()
    assert gate.wait_for(active=1, waiting=2)

    refused = client.post(f"/api/conversations/{conversations[3]}/messages", json={"text": QUESTION})

    body = assert_rate_limited(refused, "assistant_busy")
    assert body["detail"].startswith("O assistente está atendendo muitas pessoas")
    held.release.set()
    for worker in workers:
        worker.join(10)
    assert [results[n].status_code for n in range(3)] == [200, 200, 200]
    assert gate.wait_for(active=0, waiting=0)


def test_small_talk_and_conversations_with_a_person_do_not_wait_for_the_answer_queue(
    queued: tuple[TestClient, Services, Held],
) -> None:
    client, services, held = queued
    gate = services.answer_gate
    asking, chatting, waiting = (new_conversation(client) for _ in range(3))
    assert client.post(f"/api/conversations/{waiting}/handoff").status_code == 200
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(
            client.post(f"/api/conversations/{asking}/messages", json={"text": QUESTION}).status_code
        )
    )
    worker.start()
    assert gate.wait_for(active=1, waiting=0)

    greeting = client.post(f"/api/conversations/{chatting}/messages", json={"text": "bom dia"})
    forwarded = client.post(f"/api/conversations/{waiting}/messages", json={"text": "ainda estou aqui"})

    assert greeting.status_code == 200
    assert greeting.json()["route"] == "smalltalk"
    assert forwarded.status_code == 200
    assert forwarded.json()["decision"] == "handoff"
    held.release.set()
    worker.join(10)
    assert done == [200]
    # The scripted model expects three answers: use the other two.
    for _ in range(2):
        assert client.post(f"/api/conversations/{asking}/messages", json={"text": QUESTION}).status_code == 200


def test_a_streamed_answer_holds_its_slot_until_the_stream_ends_and_a_failed_one_gives_it_back(
    test_settings: Settings, knowledge_documents: list[Document]
) -> None:
    from assistant.llm import LLMError

    held = Held(first_sentence_of(1))
    model = ScriptedChatModel([held, LLMError("model crashed")])
    settings = test_settings.model_copy(update={"answer_concurrency": 1, "answer_queue_max": 0})
    with app_client(settings, knowledge_documents, model) as (client, services):
        gate = services.answer_gate
        cid, other = new_conversation(client), new_conversation(client)
        streamed: list[str] = []
        worker = threading.Thread(
            target=lambda: streamed.append(
                client.post(f"/api/conversations/{cid}/messages/stream", json={"text": QUESTION}).text
            )
        )
        worker.start()
        # The route has returned its StreamingResponse; the model runs inside the stream, still in the slot.
        assert gate.wait_for(active=1, waiting=0)
        assert_rate_limited(
            client.post(f"/api/conversations/{other}/messages", json={"text": QUESTION}), "assistant_busy"
        )
        held.release.set()
        worker.join(10)
        assert sse_events(streamed[0])[-1][0] == "done"
        assert gate.wait_for(active=0, waiting=0)

        failed = client.post(f"/api/conversations/{other}/messages", json={"text": QUESTION})
        assert failed.status_code == 200
        assert gate.active == 0
        assert client.post(f"/api/conversations/{other}/messages", json={"text": "obrigado"}).status_code == 200


def test_the_gate_refuses_at_once_when_the_measured_pace_would_pass_the_wait_bound() -> None:
    now = [0.0]
    gate = AnswerGate(1, 4, max_wait_s=45.0, clock=lambda: now[0])

    async def scenario() -> float:
        first = await gate.acquire()
        assert first.slot is not None
        now[0] = 30.0
        gate.release(first.slot)  # one answer took 30 s
        running = await gate.acquire()
        assert running.slot is not None
        waiting = asyncio.ensure_future(gate.acquire())  # the next one would wait about 30 s: it queues
        await asyncio.sleep(0)  # let it take its place in line
        assert gate.waiting == 1
        refused = await gate.acquire()  # about 60 s behind two answers: past the 45 s bound
        assert refused.slot is None
        gate.release(running.slot)
        admitted = await waiting
        assert admitted.slot is not None
        gate.release(admitted.slot)
        return refused.retry_after_s

    assert asyncio.run(scenario()) >= 60  # two answers ahead of it, 30 s each


# Proof of work after a burst


@pytest.mark.parametrize(
    "limited", [{"challenge": "pow", "challenge_burst": 2, "challenge_difficulty": 8}], indirect=True
)
def test_after_a_burst_a_new_conversation_needs_a_solved_puzzle_and_each_solution_works_once(
    limited: tuple[TestClient, Services],
) -> None:
    client, _ = limited
    new_conversation(client)
    new_conversation(client)

    asked = client.post("/api/conversations")

    assert asked.status_code == 428
    body = asked.json()
    assert body["code"] == "challenge_required"
    assert body["detail"]
    puzzle = body["challenge"]
    assert puzzle["algorithm"] == "sha256"
    assert puzzle["difficulty"] == 8
    assert puzzle["header"] == HEADER
    proof = f"{puzzle['nonce']}:{solve(puzzle['nonce'], 8)}"
    assert client.post("/api/conversations", headers={HEADER: proof}).status_code == 201
    assert client.post("/api/conversations", headers={HEADER: proof}).status_code == 428  # replayed
    wrong = f"{puzzle['nonce'][:-1]}0:{solve(puzzle['nonce'], 8)}"
    assert client.post("/api/conversations", headers={HEADER: wrong}).status_code == 428  # forged nonce


def test_leading_zero_bits_are_counted_across_bytes() -> None:
    assert leading_zero_bits(b"\x00\x00\x80") == 16
    assert leading_zero_bits(b"\x00\x1f") == 11
    assert leading_zero_bits(b"\xff") == 0


def test_the_chat_page_loads_the_puzzle_solver_before_the_chat(limited: tuple[TestClient, Services]) -> None:
    client, _ = limited
    page = client.get("/").text
    solver = client.get("/static/pow.js")

    assert solver.status_code == 200
    assert "javascript" in solver.headers["content-type"]
    assert HEADER in solver.text
    assert -1 < page.index("/static/pow.js") < page.index("/static/chat.js")


def test_rate_limits_count_an_ipv6_subscriber_by_its_64_and_ipv4_by_address() -> None:
    from core.accounts.ipfilter import counted_as

    assert counted_as("2001:db8:1:2:aaaa::1") == counted_as("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert counted_as("2001:db8:1:3::1") != counted_as("2001:db8:1:2::1")
    assert counted_as("::ffff:192.0.2.7") == "192.0.2.7"
    assert counted_as("192.0.2.7") != counted_as("192.0.2.8")
    assert counted_as(None) == "unknown"

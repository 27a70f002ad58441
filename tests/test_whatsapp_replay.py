"""Replaying 10,000 webhook deliveries (30% duplicates, statuses shuffled) through real worker processes that are
killed with SIGKILL in the middle: every distinct message has exactly one outcome (one assistant turn, or, once
the conversation was handed off after two abstentions, a message waiting for the agent), nothing lost, every
final status right."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from whatsapp_support import (
    encode,
    message_body,
    signed_headers,
    status_body,
    whatsapp_settings,
    worker_environment,
)

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import Services
from channels.whatsapp.models import ContactRow, OutboxRow
from channels.whatsapp.service import WhatsAppService
from conversation.models import InboxRow
from core.models import Conversation, Message, Turn, utcnow
from core.settings import Settings
from rag.types import Document

SUPPORT = Path(__file__).resolve().parent / "whatsapp_support.py"
QUESTIONS = (
    "Como emito a segunda via do boleto do IPTU? ({n})",
    "Olá, bom dia! ({n})",
    "Quais documentos preciso para o alvará de funcionamento? ({n})",
    "Obrigado pela ajuda ({n})",
)
FINAL = {"read": ("sent", "delivered", "read"), "delivered": ("sent", "delivered"), "failed": ("sent", "failed")}


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


@pytest.fixture
def services(test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document]) -> Iterator[Services]:
    settings = whatsapp_settings(test_settings, graph.url, whatsapp_lease_s=30.0)
    svc = make_services(settings, ScriptedChatModel([]), knowledge_documents)
    yield svc
    svc.close()


class Worker:
    """`whatsapp_support.worker_main` in a child process; its stdout says how many rows it has claimed."""

    def __init__(self, settings: Settings) -> None:
        # The tests' helpers and the checkout under test, ahead of whichever checkout the package is installed from.
        path = os.pathsep.join([str(SUPPORT.parent), str(SUPPORT.parent.parent)])
        env = {**os.environ, **worker_environment(settings), "PYTHONPATH": path}
        self.process = subprocess.Popen(
            [sys.executable, str(SUPPORT)], env=env, stdout=subprocess.PIPE, text=True, cwd=SUPPORT.parent.parent
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"
        self.claimed = 0

    def read_until_claimed(self, count: int) -> None:
        assert self.process.stdout is not None
        while self.claimed < count:
            line = self.process.stdout.readline()
            assert line, "the worker stopped early"
            if line.startswith("inbox "):
                self.claimed += int(line.split()[1])

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def finish(self) -> None:
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.stdout.close()
        assert self.process.wait(300) == 0
        assert out.rstrip().endswith("idle")


def the_leases_of_the_dead_worker_expire(wa: WhatsAppService) -> None:
    """What waiting out the lease would do, without waiting."""
    with wa.sessions() as session:
        session.execute(
            update(InboxRow)
            .where(InboxRow.state == "pending", InboxRow.lease_owner.is_not(None))
            .values(lease_until=utcnow())
        )
        session.commit()


def with_duplicates(items: list[dict[str, Any]], share: float, rng: random.Random) -> list[dict[str, Any]]:
    """`items` shuffled, plus redeliveries of randomly chosen ones making `share` of the result."""
    extra = round(len(items) * share / (1 - share))
    deliveries = [*items, *(rng.choice(items) for _ in range(extra))]
    rng.shuffle(deliveries)
    return deliveries


def post_all(app: FastAPI, bodies: list[dict[str, Any]], concurrency: int = 32) -> None:
    """Deliver `bodies` to the webhook, `concurrency` at a time, as Meta's servers do; every one must get 200."""

    async def deliver_all() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atende.test") as http:

            async def deliver(body: dict[str, Any]) -> int:
                raw = encode(body)
                async with gate:
                    response = await http.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw))
                return response.status_code

            return await asyncio.gather(*(deliver(body) for body in bodies))

    assert set(asyncio.run(deliver_all())) == {200}


def kill_in_the_middle(settings: Settings, wa: WhatsAppService, after: int) -> None:
    first = Worker(settings)
    first.read_until_claimed(after)
    first.kill()
    the_leases_of_the_dead_worker_expire(wa)
    Worker(settings).finish()


def answered_by_the_bot(wa: WhatsAppService, texts: dict[str, str]) -> Counter[str]:
    """Turns per message text; asserts that every message the bot did not answer went to the agents' queue."""
    with wa.sessions() as session:
        turns = Counter(session.scalars(select(Turn.user_text)))
        handed_off = set(
            session.scalars(
                select(Message.text)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.role == "user", Conversation.state.in_(("waiting", "with_agent")))
            )
        )
    assert set(turns) <= set(texts.values())
    assert set(texts.values()) - set(turns) <= handed_off
    return turns


def scalar(wa: WhatsAppService, stmt: Any) -> Any:
    with wa.sessions() as session:
        return session.scalar(stmt)


@pytest.mark.slow
def test_ten_thousand_deliveries_with_duplicates_and_a_killed_worker(services: Services, graph: FakeGraphAPI) -> None:
    wa = services.whatsapp
    assert wa is not None
    rng = random.Random(7)
    citizens, per_citizen = 120, 16
    distinct = citizens * per_citizen  # 1,920 messages; their statuses make ~5,000 more distinct deliveries
    texts = {f"wamid.in{n}": rng.choice(QUESTIONS).format(n=n) for n in range(distinct)}
    inbound = [
        message_body(wamid=f"wamid.in{n}", text=texts[f"wamid.in{n}"], citizen=n % citizens + 1)
        for n in range(distinct)
    ]
    inbound_deliveries = with_duplicates(inbound, 0.3, rng)

    app = create_app(services=services)
    with TestClient(app):  # runs the app's lifespan: the inbox writer starts
        post_all(app, inbound_deliveries)
        kill_in_the_middle(services.settings, wa, after=distinct // 3)

        # At most one assistant turn per distinct message; the rest waits for an agent; nothing lost.
        turns = answered_by_the_bot(wa, texts)
        assert set(turns.values()) == {1}
        assert len(turns) > distinct // 4  # most conversations are answered before any handoff
        with wa.sessions() as session:
            user_texts = Counter(session.scalars(select(Message.text).where(Message.role == "user")))
        assert user_texts == Counter(texts.values())
        assert scalar(wa, select(func.count()).select_from(InboxRow).where(InboxRow.state != "done")) == 0

        wa.sender().run_until_idle()
        assert len(graph.sends) == scalar(wa, select(func.count()).select_from(OutboxRow))
        assert len({s["json"]["biz_opaque_callback_data"] for s in graph.sends}) == len(graph.sends)

        # Statuses for every reply, in any order, 30% redelivered, plus late redeliveries of old messages.
        final = {s["wamid"]: rng.choice(["read", "read", "delivered", "failed"]) for s in graph.sends}
        statuses = [status_body(wamid, step) for wamid, last in final.items() for step in FINAL[last]]
        status_deliveries = with_duplicates(statuses, 0.3, rng)
        late = [rng.choice(inbound) for _ in range(10_000 - len(inbound_deliveries) - len(status_deliveries))]
        assert len(inbound_deliveries) + len(status_deliveries) + len(late) == 10_000
        post_all(app, status_deliveries + late)
        kill_in_the_middle(services.settings, wa, after=len(statuses) // 4)

    assert answered_by_the_bot(wa, texts) == turns  # late redeliveries answered nothing again
    assert len(graph.sends) == len(final)
    with wa.sessions() as session:
        recorded = {wamid: status for wamid, status in session.execute(select(OutboxRow.wamid, OutboxRow.status))}
        assert recorded == final
        per_citizen_messages = session.execute(
            select(ContactRow.citizen_ref, func.count(Message.id))
            .join(Message, Message.conversation_id == ContactRow.conversation_id)
            .where(Message.role == "user")
            .group_by(ContactRow.citizen_ref)
        ).all()
    assert sorted(n for _, n in per_citizen_messages) == [per_citizen] * citizens

"""The WhatsApp tables on both databases, and the pipeline on PostgreSQL with two workers racing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import make_services
from fake_graph_api import FakeGraphAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from whatsapp_support import encode, message_body, signed_headers, status_body, whatsapp_settings

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.schema import metadata
from channels.whatsapp.models import OutboxRow
from core.db import make_engine
from core.migrate import downgrade, upgrade
from core.models import Turn
from core.settings import Settings
from rag.types import Document

WA_TABLES = {
    "inbox",
    "wa_contacts",
    "wa_outbox",
    "wa_media",
    "wa_templates",
    "wa_campaigns",
    "wa_campaign_recipients",
}


def wa_differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), metadata)
        return [d for d in diffs if "wa_" in repr(d)]
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_migration_creates_exactly_the_whatsapp_models_and_removes_them(database_url: str) -> None:
    upgrade(database_url)
    assert table_names(database_url) >= WA_TABLES
    assert wa_differences(database_url) == []
    downgrade(database_url, "0003")
    assert table_names(database_url) & WA_TABLES == set()
    upgrade(database_url)
    assert wa_differences(database_url) == []


@pytest.fixture
def graph() -> Iterator[FakeGraphAPI]:
    with FakeGraphAPI() as fake:
        yield fake


@pytest.mark.integration
def test_two_workers_on_postgresql_answer_each_message_once(
    test_settings: Settings, graph: FakeGraphAPI, knowledge_documents: list[Document], postgres_url: str
) -> None:
    settings = whatsapp_settings(test_settings, graph.url, database_url=postgres_url)
    svc = make_services(settings, ScriptedChatModel([]), knowledge_documents)
    try:
        wa = svc.whatsapp
        assert wa is not None
        texts = [f"Olá, bom dia ({n})" for n in range(40)]
        bodies = [message_body(wamid=f"wamid.pg{n}", text=txt, citizen=n % 8 + 1) for n, txt in enumerate(texts)]
        with TestClient(create_app(services=svc)) as client:
            for body in [*bodies, *bodies[::3]]:
                raw = encode(body)
                assert client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw)).status_code == 200
            workers = [threading.Thread(target=wa.processor(f"w{i}").run_until_idle) for i in range(2)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(120)
            wa.sender().run_until_idle()
            for send in graph.sends:
                for status in ("read", "sent", "delivered"):
                    raw = encode(status_body(send["wamid"], status))
                    client.post("/webhooks/whatsapp", content=raw, headers=signed_headers(raw))
            wa.drain()
        with wa.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Turn)) == len(texts)
            statuses = session.scalars(select(OutboxRow.status)).all()
        assert len(graph.sends) == len(texts)
        assert set(statuses) == {"read"}
    finally:
        svc.close()

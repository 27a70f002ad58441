"""Shared helpers of the handoff tests: live states to run the conformance suite over, PostgreSQL schemas, and a
database + live state stack from which several app "processes" are built."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import service_unavailable

from atende.accounts.testing import ManualClock
from atende.db import make_engine, make_session_factory
from atende.handoff.live import InMemoryLiveState, LiveState, RedisLiveState
from atende.handoff.service import HandoffService
from atende.migrate import upgrade
from atende.store import ConversationStore

REDIS_URL = os.environ.get("ATENDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_live_state() -> Iterator[RedisLiveState]:
    """A Redis live state under a key prefix no other test uses; its keys are deleted afterwards."""
    import redis

    prefix = f"atende-test:{uuid.uuid4().hex[:12]}:"
    live = RedisLiveState(REDIS_URL, prefix=prefix)
    try:
        live.ping()
    except redis.RedisError as exc:
        live.close()
        service_unavailable(f"Redis at {REDIS_URL}", exc)
    try:
        yield live
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
        live.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def live(request: pytest.FixtureRequest) -> Iterator[LiveState]:
    if request.param == "memory":
        yield InMemoryLiveState()
    else:
        yield from redis_live_state()


POSTGRES_URL = os.environ.get("ATENDE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, throwaway schema (migrated by the caller)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from atende.db import make_engine, normalize_url

    admin = make_engine(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        service_unavailable(f"PostgreSQL at {POSTGRES_URL}", exc.orig)
    url = normalize_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Stack:
    """A database, its store and a live state, from which several app 'processes' can be built."""

    def __init__(self, url: str, live: LiveState, clock: ManualClock) -> None:
        upgrade(url)
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        self.store = ConversationStore(self.sessions, clock=clock)
        self.live = live
        self.clock = clock

    def service(self, live: LiveState | None = None, **options: Any) -> HandoffService:
        return HandoffService(self.sessions, self.store, live or self.live, clock=self.clock, **options)


@pytest.fixture(name="stack", params=["sqlite", pytest.param("postgresql+redis", marks=pytest.mark.integration)])
def stack_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    clock = ManualClock()
    if request.param == "sqlite":
        built = Stack(f"sqlite:///{(tmp_path / 'atende.db').as_posix()}", InMemoryLiveState(), clock)
        yield built
        built.engine.dispose()
        return
    for url in postgres_schema_url():
        for live in redis_live_state():
            built = Stack(url, live, clock)
            yield built
            built.engine.dispose()

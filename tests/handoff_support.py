"""Shared helpers of the handoff tests: live states to run the conformance suite over, and a database + live state
stack from which several app "processes" are built."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from backing_services import postgres_schema, redis_keyspace

from core.accounts.testing import ManualClock
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.store import ConversationStore
from handoff.live import InMemoryLiveState, LiveState, RedisLiveState
from handoff.service import HandoffService


@contextmanager
def redis_live_state() -> Iterator[RedisLiveState]:
    """A Redis live state under a key prefix no other test uses; its keys are deleted afterwards."""
    with redis_keyspace() as keys:
        live = RedisLiveState(keys.url, prefix=keys.prefix)
        try:
            yield live
        finally:
            live.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def live(request: pytest.FixtureRequest) -> Iterator[LiveState]:
    if request.param == "memory":
        yield InMemoryLiveState()
    else:
        with redis_live_state() as state:
            yield state


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
    with postgres_schema() as url, redis_live_state() as live:
        built = Stack(url, live, clock)
        yield built
        built.engine.dispose()

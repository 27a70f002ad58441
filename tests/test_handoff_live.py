"""The live-state boundary (queues, locks, presence, pub/sub): one suite over the in-process and Redis versions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from backing_services import RedisKeys
from handoff_support import live  # noqa: F401  (the parametrised fixture)

from handoff.live import InMemoryLiveState, LiveState, RedisLiveState


def test_a_queue_serves_the_longest_waiting_conversation_first(live: LiveState) -> None:  # noqa: F811
    live.enqueue("iptu", "b", 20.0)
    live.enqueue("iptu", "a", 10.0)
    live.enqueue("iptu", "c", 30.0)

    assert live.queue("iptu") == ["a", "b", "c"]
    assert [live.position("iptu", cid) for cid in ("a", "b", "c")] == [1, 2, 3]


def test_queueing_a_conversation_again_keeps_its_original_place(live: LiveState) -> None:  # noqa: F811
    live.enqueue("iptu", "a", 10.0)
    live.enqueue("iptu", "b", 20.0)

    live.enqueue("iptu", "a", 99.0)

    assert live.queue("iptu") == ["a", "b"]


def test_removing_a_conversation_moves_the_others_up(live: LiveState) -> None:  # noqa: F811
    for score, cid in enumerate(("a", "b", "c")):
        live.enqueue("iptu", cid, float(score))

    live.remove("iptu", "a")

    assert live.position("iptu", "a") is None
    assert live.position("iptu", "c") == 2


def test_teams_lists_only_teams_with_someone_waiting(live: LiveState) -> None:  # noqa: F811
    live.enqueue("iptu", "a", 1.0)
    live.enqueue("saude", "b", 2.0)
    live.remove("saude", "b")

    assert live.teams() == ["iptu"]
    assert live.queue("saude") == []


def test_of_many_concurrent_claimers_exactly_one_gets_the_lock(live: LiveState) -> None:  # noqa: F811
    barrier = threading.Barrier(8)

    def grab(agent: int) -> bool:
        barrier.wait()
        return live.acquire("conv-1", f"user:{agent}", 30.0)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(grab, range(8)))

    assert results.count(True) == 1


def test_only_the_owner_releases_a_lock(live: LiveState) -> None:  # noqa: F811
    assert live.acquire("conv-1", "user:1", 30.0)

    live.release("conv-1", "user:2")
    assert not live.acquire("conv-1", "user:3", 30.0)

    live.release("conv-1", "user:1")
    assert live.acquire("conv-1", "user:3", 30.0)


def test_presence_keeps_each_agents_latest_status(live: LiveState) -> None:  # noqa: F811
    live.set_presence("user:1", "online", 60.0)
    live.set_presence("user:2", "online", 60.0)
    live.set_presence("user:1", "paused", 60.0)

    assert live.presence() == {"user:1": "paused", "user:2": "online"}


def test_going_offline_removes_the_agent_from_presence(live: LiveState) -> None:  # noqa: F811
    live.set_presence("user:1", "online", 60.0)
    live.set_presence("user:2", "online", 60.0)
    live.set_presence("user:1", "offline", 60.0)

    assert live.presence() == {"user:2": "online"}


def test_a_console_that_stops_beating_is_forgotten_after_the_ttl() -> None:
    now = [1000.0]
    state = InMemoryLiveState(clock=lambda: now[0])
    state.set_presence("user:1", "online", 60.0)
    state.set_presence("user:2", "online", 60.0)

    now[0] += 45
    state.set_presence("user:2", "online", 60.0)  # user:2's console beats; user:1's tab was closed
    now[0] += 30

    assert state.presence() == {"user:2": "online"}


@pytest.mark.integration
def test_redis_presence_expires_by_itself_within_the_ttl(redis_keys: RedisKeys) -> None:
    state = RedisLiveState(redis_keys.url, prefix=redis_keys.prefix)
    try:
        state.set_presence("user:1", "online", 60.0)
        # Redis deletes the key itself: nothing of ours must run for a silent agent to go offline.
        assert 0 < redis_keys.client.pttl(redis_keys.prefix + "presence:user:1") <= 60_000
        assert state.presence() == {"user:1": "online"}
    finally:
        state.close()

"""The live-state boundary (queues, locks, presence, pub/sub): one suite over the in-process and Redis versions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from handoff_support import live  # noqa: F401  (the parametrised fixture)

from atende.handoff.live import InMemoryLiveState, LiveState


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
    live.set_presence("user:1", "online")
    live.set_presence("user:2", "online")
    live.set_presence("user:1", "paused")

    assert live.presence() == {"user:1": "paused", "user:2": "online"}


def test_a_published_message_reaches_the_subscribers_of_its_topic_only(live: LiveState) -> None:  # noqa: F811
    queue_watcher = live.subscribe("queue")
    other = live.subscribe("conversation:x")
    try:
        live.publish("queue", {"event": "queued", "conversation_id": "a"})

        assert queue_watcher.next(5.0) == {"topic": "queue", "event": "queued", "conversation_id": "a"}
        assert other.next(0.05) is None
    finally:
        queue_watcher.close()
        other.close()


def test_a_closed_subscription_receives_nothing_more(live: LiveState) -> None:  # noqa: F811
    watcher = live.subscribe("queue")
    live.publish("queue", {"event": "first"})
    assert watcher.next(5.0) is not None
    watcher.close()

    live.publish("queue", {"event": "second"})  # must not fail with nobody listening


def test_an_expired_lock_can_be_taken_by_someone_else() -> None:
    now = [0.0]
    expiring = InMemoryLiveState(clock=lambda: now[0])
    assert expiring.acquire("conv-1", "user:1", 30.0)

    now[0] = 31.0

    assert expiring.acquire("conv-1", "user:2", 30.0)
    expiring.release("conv-1", "user:1")  # the old owner's late release must not free the new owner's lock
    assert not expiring.acquire("conv-1", "user:3", 30.0)

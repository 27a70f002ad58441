"""The live state of handoffs: queues, agent presence, assignment locks and pub/sub to the consoles.

The database is the source of truth (a restart rebuilds the queues from waiting conversations); this boundary
only holds what must be fast and shared between app processes. `RedisLiveState` serves production (two
processes share one queue); `InMemoryLiveState` serves the embedded single-process demo and the tests.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Message = dict[str, Any]


class Subscription(Protocol):
    def next(self, timeout_s: float) -> Message | None:
        """The next published message, or None when none came within `timeout_s`."""
        ...

    def close(self) -> None: ...


class LiveState(Protocol):
    def enqueue(self, team: str, conversation_id: str, score: float) -> None:
        """Put (or keep) the conversation in the team's queue; lower scores are served first."""
        ...

    def remove(self, team: str, conversation_id: str) -> None: ...

    def queue(self, team: str) -> list[str]:
        """The team's waiting conversations, first served first."""
        ...

    def teams(self) -> list[str]: ...

    def position(self, team: str, conversation_id: str) -> int | None:
        """1-based place in the team's queue; None when not queued there."""
        ...

    def acquire(self, conversation_id: str, owner: str, ttl_s: float) -> bool:
        """Take the assignment lock of a conversation; exactly one concurrent caller gets True."""
        ...

    def release(self, conversation_id: str, owner: str) -> None:
        """Drop the lock, only if `owner` still holds it."""
        ...

    def set_presence(self, agent: str, status: str, ttl_s: float) -> None:
        """The agent's status, forgotten after `ttl_s` unless set again (the console beats while it is open)."""
        ...

    def presence(self) -> dict[str, str]:
        """Agents whose status has not expired; an agent who went offline is not listed."""
        ...

    def publish(self, topic: str, message: Mapping[str, Any]) -> None: ...

    def subscribe(self, *topics: str) -> Subscription: ...

    def close(self) -> None: ...


class _LocalSubscription:
    def __init__(self, on_close: Callable[[_LocalSubscription], None]) -> None:
        self.inbox: queue.Queue[Message] = queue.Queue()
        self._on_close = on_close

    def next(self, timeout_s: float) -> Message | None:
        try:
            return self.inbox.get(timeout=max(timeout_s, 0.0)) if timeout_s > 0 else self.inbox.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._on_close(self)


class InMemoryLiveState:
    """Live state inside one process (thread-safe); what the embedded demo and unit tests use."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._queues: dict[str, dict[str, float]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._presence: dict[str, tuple[str, float]] = {}
        self._subscribers: dict[str, list[_LocalSubscription]] = {}

    def enqueue(self, team: str, conversation_id: str, score: float) -> None:
        with self._lock:
            self._queues.setdefault(team, {}).setdefault(conversation_id, score)

    def remove(self, team: str, conversation_id: str) -> None:
        with self._lock:
            self._queues.get(team, {}).pop(conversation_id, None)

    def queue(self, team: str) -> list[str]:
        with self._lock:
            entries = self._queues.get(team, {})
            return sorted(entries, key=lambda cid: (entries[cid], cid))

    def teams(self) -> list[str]:
        with self._lock:
            return sorted(team for team, entries in self._queues.items() if entries)

    def position(self, team: str, conversation_id: str) -> int | None:
        order = self.queue(team)
        return order.index(conversation_id) + 1 if conversation_id in order else None

    def acquire(self, conversation_id: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            now = self._clock()
            held = self._locks.get(conversation_id)
            if held is not None and held[1] > now:
                return False
            self._locks[conversation_id] = (owner, now + ttl_s)
            return True

    def release(self, conversation_id: str, owner: str) -> None:
        with self._lock:
            held = self._locks.get(conversation_id)
            if held is not None and held[0] == owner:
                del self._locks[conversation_id]

    def set_presence(self, agent: str, status: str, ttl_s: float) -> None:
        with self._lock:
            if status == "offline":
                self._presence.pop(agent, None)
            else:
                self._presence[agent] = (status, self._clock() + ttl_s)

    def presence(self) -> dict[str, str]:
        with self._lock:
            now = self._clock()
            for agent in [a for a, (_, until) in self._presence.items() if until <= now]:
                del self._presence[agent]
            return {agent: status for agent, (status, _) in self._presence.items()}

    def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers.get(topic, ()))
        for subscription in targets:
            subscription.inbox.put({"topic": topic, **message})

    def subscribe(self, *topics: str) -> Subscription:
        def unsubscribe(subscription: _LocalSubscription) -> None:
            with self._lock:
                for topic in topics:
                    members = self._subscribers.get(topic, [])
                    if subscription in members:
                        members.remove(subscription)

        subscription = _LocalSubscription(unsubscribe)
        with self._lock:
            for topic in topics:
                self._subscribers.setdefault(topic, []).append(subscription)
        return subscription

    def close(self) -> None:
        return None


# Compare-and-delete: a lock that expired and was taken by someone else must not be released by its old owner.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class _RedisSubscription:
    def __init__(self, pubsub: Any, prefix: str) -> None:
        self._pubsub = pubsub
        self._prefix = prefix

    def next(self, timeout_s: float) -> Message | None:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while True:
            raw = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=max(deadline - time.monotonic(), 0))
            if raw is not None and raw.get("type") == "message":
                channel = raw["channel"].decode() if isinstance(raw["channel"], bytes) else raw["channel"]
                message: Message = json.loads(raw["data"])
                return {"topic": channel.removeprefix(self._prefix + "events:"), **message}
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        self._pubsub.close()


class RedisLiveState:
    """Live state in Redis, shared by every app process; `prefix` namespaces the keys (one per deployment/test)."""

    def __init__(self, url: str, *, prefix: str = "atende:") -> None:
        import redis

        # Typed loosely: redis-py types every command as "sync or async" and this client is the sync one.
        self._redis: Any = redis.Redis.from_url(url)
        self._prefix = prefix
        self._release = self._redis.register_script(_RELEASE)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def ping(self) -> None:
        self._redis.ping()

    def enqueue(self, team: str, conversation_id: str, score: float) -> None:
        pipe = self._redis.pipeline()
        pipe.zadd(self._key("queue", team), {conversation_id: score}, nx=True)
        pipe.sadd(self._key("teams"), team)
        pipe.execute()

    def remove(self, team: str, conversation_id: str) -> None:
        self._redis.zrem(self._key("queue", team), conversation_id)

    def queue(self, team: str) -> list[str]:
        return [member.decode() for member in self._redis.zrange(self._key("queue", team), 0, -1)]

    def teams(self) -> list[str]:
        names = sorted(member.decode() for member in self._redis.smembers(self._key("teams")))
        return [team for team in names if self._redis.zcard(self._key("queue", team))]

    def position(self, team: str, conversation_id: str) -> int | None:
        rank = self._redis.zrank(self._key("queue", team), conversation_id)
        return None if rank is None else int(rank) + 1

    def acquire(self, conversation_id: str, owner: str, ttl_s: float) -> bool:
        return bool(self._redis.set(self._key("lock", conversation_id), owner, nx=True, px=int(ttl_s * 1000)))

    def release(self, conversation_id: str, owner: str) -> None:
        self._release(keys=[self._key("lock", conversation_id)], args=[owner])

    def set_presence(self, agent: str, status: str, ttl_s: float) -> None:
        # One expiring key per agent (Redis forgets a silent console by itself) and a roster to find the keys.
        pipe = self._redis.pipeline()
        if status == "offline":
            pipe.delete(self._key("presence", agent))
            pipe.srem(self._key("agents"), agent)
        else:
            pipe.set(self._key("presence", agent), status, px=max(int(ttl_s * 1000), 1))
            pipe.sadd(self._key("agents"), agent)
        pipe.execute()

    def presence(self) -> dict[str, str]:
        agents = sorted(member.decode() for member in self._redis.smembers(self._key("agents")))
        if not agents:
            return {}
        statuses = self._redis.mget([self._key("presence", agent) for agent in agents])
        gone = [agent for agent, status in zip(agents, statuses, strict=True) if status is None]
        if gone:
            self._redis.srem(self._key("agents"), *gone)
        return {agent: status.decode() for agent, status in zip(agents, statuses, strict=True) if status is not None}

    def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        self._redis.publish(self._key("events", topic), json.dumps(dict(message), ensure_ascii=False))

    def subscribe(self, *topics: str) -> Subscription:
        pubsub = self._redis.pubsub()
        pubsub.subscribe(*(self._key("events", topic) for topic in topics))
        # Wait for the confirmations: a message published right after subscribe() returns must not be missed.
        confirmed = 0
        while confirmed < len(topics):
            raw = pubsub.get_message(timeout=5.0)
            if raw is None:
                pubsub.close()
                raise TimeoutError("Redis did not confirm the subscription")
            if raw.get("type") == "subscribe":
                confirmed += 1
        return _RedisSubscription(pubsub, self._prefix)

    def close(self) -> None:
        self._redis.close()

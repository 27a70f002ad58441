"""Attempt counters for brute-force-prone actions (identity verification): in-process and Redis.

Fixed windows: the first hit opens a window of `window_s` seconds; at most `limit` hits count inside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis import Redis


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int  # hits still allowed in this window after this one
    retry_after_s: float


class RateLimiter(Protocol):
    def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        """Count one attempt under `key` and say whether it is within the limit."""
        ...

    def peek(self, key: str, *, limit: int) -> int:
        """How many attempts are left under `key` without counting one."""
        ...

    def refund(self, key: str) -> None:
        """Take back one attempt counted under `key` (a success that should not count towards the limit)."""
        ...


class InMemoryRateLimiter:
    """One process only: for the embedded demo and tests. Several workers need the Redis one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key → (window start, window length, count); the length is the first hit's, as Redis keeps its expiry
        self._windows: dict[str, tuple[float, float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        now = self._clock()
        with self._lock:
            started, length, count = self._windows.get(key, (now, window_s, 0))
            if now - started >= length:
                started, length, count = now, window_s, 0
            count += 1
            self._windows[key] = (started, length, count)
        retry = max(0.0, started + length - now)
        return RateDecision(count <= limit, max(0, limit - count), 0.0 if count <= limit else retry)

    def peek(self, key: str, *, limit: int) -> int:
        now = self._clock()
        with self._lock:
            started, length, count = self._windows.get(key, (now, 0.0, 0))
        return max(0, limit - (count if now - started < length else 0))

    def refund(self, key: str) -> None:
        with self._lock:
            if key in self._windows:
                started, length, count = self._windows[key]
                self._windows[key] = (started, length, max(0, count - 1))


class RedisRateLimiter:
    """Shared by every worker: INCR plus an expiry set on the first hit, in one transaction."""

    def __init__(self, client: Redis, prefix: str = "atende:rl:") -> None:
        self._redis = client
        self._prefix = prefix

    def hit(self, key: str, *, limit: int, window_s: float) -> RateDecision:
        name = self._prefix + key
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.pexpire(name, int(window_s * 1000), nx=True)
        pipe.pttl(name)
        count, _, ttl_ms = pipe.execute()
        allowed = int(count) <= limit
        return RateDecision(allowed, max(0, limit - int(count)), 0.0 if allowed else max(0, int(ttl_ms)) / 1000)

    def peek(self, key: str, *, limit: int) -> int:
        value = self._redis.get(self._prefix + key)
        return max(0, limit - int(value or 0))  # type: ignore[arg-type]

    # DECR only while the window's key exists, so a refund never creates a key without an expiry.
    _REFUND = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end return 0"

    def refund(self, key: str) -> None:
        self._redis.eval(self._REFUND, 1, self._prefix + key)

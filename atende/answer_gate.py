"""Admission to answer generation: a few answers at once, a short bounded queue, and a fast refusal past it.

The embedded model answers one question at a time. Without a bound, ten parallel questions each wait for the
others and all of them pass the LLM timeout; with it, a question that would wait too long is refused at once
(429 with an estimated Retry-After) and the admitted ones finish in time.

The gate is per process, as the embedded model is: each app process runs its own llama.cpp. Waiting happens on
the requests' event loops (asyncio futures), counting under a thread lock, so one gate serves several loops.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    """The gate's answer: admitted (`slot` set, release it when done), or refused with a retry estimate."""

    slot: Slot | None
    retry_after_s: float = 0.0

    @property
    def admitted(self) -> bool:
        return self.slot is not None


@dataclass
class Slot:
    started: float
    released: bool = False


class AnswerGate:
    """At most `concurrency` answers at once and `queue_max` waiting; none waits longer than `max_wait_s`."""

    def __init__(
        self,
        concurrency: int,
        queue_max: int,
        max_wait_s: float,
        *,
        expected_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.queue_max = queue_max
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._active = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._average_s = expected_s  # moving average of how long an admitted answer holds its slot
        self._measured = 0

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def free(self) -> bool:
        """A question arriving now would be answered at once."""
        with self._lock:
            return self._active < self.concurrency and not self._waiters

    def estimate_s(self, position: int) -> float:
        """How long the `position`-th question in line (1: the next one) waits for a slot."""
        rounds = math.ceil(position / self.concurrency)
        return rounds * self._average_s

    def retry_after_s(self) -> int:
        """Whole seconds a refused client should wait: the line ahead of it drained, at the recent pace."""
        return max(1, math.ceil(self.estimate_s(len(self._waiters) + 1)))

    async def acquire(self) -> Admission:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._active < self.concurrency and not self._waiters:
                return self._admit_locked()
            position = len(self._waiters) + 1
            # Refused before any work: a full line, or one so slow that this question would time out in it.
            if position > self.queue_max or (self._measured and self.estimate_s(position) > self.max_wait_s):
                return Admission(None, self.retry_after_s())
            future: asyncio.Future[None] = loop.create_future()
            entry = (loop, future)
            self._waiters.append(entry)
            self._changed.notify_all()
        try:
            await asyncio.wait_for(future, timeout=self.max_wait_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    self._changed.notify_all()
                elif future.done() and not future.cancelled():
                    self._hand_over_locked()  # granted, but the request is gone: the slot goes on
                # Else a release is handing this waiter the slot right now: `_grant` finds the cancelled future
                # and passes the slot on.
                retry = self.retry_after_s()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return Admission(None, retry)
        return Admission(Slot(self._clock()))

    def _admit_locked(self) -> Admission:
        self._active += 1
        self._changed.notify_all()
        return Admission(Slot(self._clock()))

    def release(self, slot: Slot, *, measure: bool = True) -> None:
        """Give the slot back (once); the next waiter, if any, gets it."""
        if slot.released:
            return
        slot.released = True
        held = self._clock() - slot.started
        with self._lock:
            if measure:
                # Exponential moving average: recent answers count most, one outlier does not dominate.
                self._average_s = held if not self._measured else 0.7 * self._average_s + 0.3 * held
                self._measured += 1
            self._hand_over_locked()

    def _hand_over_locked(self) -> None:
        if self._waiters:
            loop, future = self._waiters.popleft()  # the slot passes to it: `_active` stays the same
            self._changed.notify_all()
            try:
                loop.call_soon_threadsafe(self._grant, future)
                return
            except RuntimeError:  # that loop is closed: its request is gone
                return self._hand_over_locked()
        self._active -= 1
        self._changed.notify_all()

    def _grant(self, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled or timed out meanwhile: the slot goes to the next in line
            with self._lock:
                self._hand_over_locked()
            return
        future.set_result(None)

    def wait_for(self, *, active: int, waiting: int, timeout: float = 5.0) -> bool:
        """Block until the gate holds this many answers and waiters (for tests driving concurrent requests)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._active == active and len(self._waiters) == waiting, timeout=timeout
            )

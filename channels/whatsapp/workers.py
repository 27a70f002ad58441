"""Background work: the inbox processor and the outbox sender (with the campaign scheduler), as threads.

They run inside `atende serve` (ATENDE_WHATSAPP_WORKER=inline) or alone in `atende wa worker`; any number of
them can run against one database, because every row they touch is leased.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from channels.whatsapp.service import WhatsAppService

log = logging.getLogger(__name__)

POLL_S = 1.0  # also how soon a retry or an expired lease is picked up


class Workers:
    def __init__(self, wa: WhatsAppService, *, inbox: bool = True, outbox: bool = True, poll_s: float = POLL_S) -> None:
        self._wa = wa
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._inbox_wake = threading.Event()
        self._outbox_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._processor = wa.processor() if inbox else None
        self._sender = wa.sender(stop=self._stop) if outbox else None

    def start(self) -> None:
        if self._processor is not None:
            self._spawn("wa-inbox", self._inbox_wake, self._processor.run_once)
        if self._sender is not None:
            sender = self._sender

            def send_step() -> int:
                return self._wa.campaigns.tick() + sender.run_once()

            self._spawn("wa-outbox", self._outbox_wake, send_step)

    def _spawn(self, name: str, wake: threading.Event, step: Callable[[], int]) -> None:
        thread = threading.Thread(target=self._loop, args=(wake, step), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _loop(self, wake: threading.Event, step: Callable[[], int]) -> None:
        while not self._stop.is_set():
            try:
                busy = step() > 0
            except Exception as exc:  # the database may be down for a while; keep the thread alive
                log.exception("whatsapp worker step failed: %s", exc)
                busy = False
            if not busy:
                wake.wait(self._poll_s)
                wake.clear()

    def wake_inbox(self) -> None:
        self._inbox_wake.set()

    def wake_outbox(self) -> None:
        self._outbox_wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._inbox_wake.set()
        self._outbox_wake.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()


def run_until_idle(wa: WhatsAppService, *, inbox: bool, outbox: bool, progress: TextIO | None = None) -> int:
    """Process until nothing is due, reporting each batch on `progress` (one line: "inbox 32")."""
    processor = wa.processor() if inbox else None
    sender = wa.sender() if outbox else None
    total = 0
    while True:
        done = 0
        if processor is not None:
            n = processor.run_once()
            if n and progress is not None:
                print(f"inbox {n}", file=progress, flush=True)
            done += n
        if sender is not None:
            n = wa.campaigns.tick() + sender.run_once()
            if n and progress is not None:
                print(f"outbox {n}", file=progress, flush=True)
            done += n
        total += done
        if not done:
            return total

"""The outbox sender: WhatsApp's rules checked at send time, then the Graph API, with retries and pacing.

Rules first: a free-form message only inside the citizen's 24-hour window, a template only with an opt-in for
its purpose. Then the per-recipient pacing (Meta's pair rate limit) and the global rate per business number,
both through the shared rate limiter (Redis when configured, so every worker counts together).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from channels.whatsapp.backoff import backoff_s
from channels.whatsapp.consent import CHANNEL
from channels.whatsapp.graph import GraphError
from channels.whatsapp.outbox import OutboxItem
from core.models import utcnow
from core.privacy import mask

if TYPE_CHECKING:
    from channels.whatsapp.service import WhatsAppService

log = logging.getLogger(__name__)

PACING_WINDOW_S = 60.0


class OutboxSender:
    def __init__(
        self,
        wa: WhatsAppService,
        owner: str,
        *,
        concurrency: int = 8,
        clock: Callable[[], datetime] = utcnow,
        stop: threading.Event | None = None,
    ) -> None:
        self.wa = wa
        self.owner = owner
        self._clock = clock
        self._concurrency = concurrency
        self._stop = stop or threading.Event()

    def run_once(self, limit: int = 32) -> int:
        """Claim and send one batch (one message per citizen, sent in parallel); returns how many were claimed."""
        items = self.wa.outbox.claim_due(self.owner, limit=limit, lease_s=self.wa.settings.whatsapp_lease_s)
        if len(items) <= 1 or self._concurrency <= 1:
            for item in items:
                self.send(item)
        else:
            with ThreadPoolExecutor(min(self._concurrency, len(items)), thread_name_prefix="wa-send") as pool:
                list(pool.map(self.send, items))
        return len(items)

    def run_until_idle(self, max_rounds: int = 100_000) -> int:
        sent = 0
        for _ in range(max_rounds):
            n = self.run_once()
            if n == 0:
                break
            sent += n
        return sent

    def send(self, item: OutboxItem) -> None:
        settings = self.wa.settings
        now = self._clock()
        contact = item.contact
        if item.kind == "template":
            purpose = item.purpose or "campanhas"
            if not self.wa.consent.is_opted_in(contact.citizen_ref, CHANNEL, purpose):
                self.wa.outbox.fail(item.id, code="no_opt_in", title=f"no opt-in for {purpose}", counted=False)
                return
        elif not contact.window_open(now):
            self.wa.outbox.fail(
                item.id, code="outside_window", title="24-hour customer-service window closed", counted=False
            )
            return

        pacing = self.wa.limiter.hit(
            f"wa:recipient:{contact.id}", limit=settings.whatsapp_recipient_per_min, window_s=PACING_WINDOW_S
        )
        if not pacing.allowed:
            self.wa.outbox.defer(item.id, delay_s=pacing.retry_after_s)
            return
        while True:
            slot = self.wa.limiter.hit(
                f"wa:number:{item.phone_number_id}", limit=settings.whatsapp_rate_per_s, window_s=1.0
            )
            if slot.allowed:
                break
            if self._stop.wait(max(slot.retry_after_s, 0.001)):
                self.wa.outbox.defer(item.id, delay_s=0)
                return

        try:
            wamid = self.wa.graph.send(item.phone_number_id, contact.recipient(), item.body, opaque=item.opaque)
        except GraphError as exc:
            attempt = item.attempts + 1
            if exc.retryable and attempt < settings.whatsapp_max_attempts:
                delay = backoff_s(attempt, settings.whatsapp_retry_base_s, settings.whatsapp_retry_max_s)
                if exc.retry_after_s is not None:
                    delay = max(delay, exc.retry_after_s)
                log.warning("whatsapp send %s failed (%s), retry %d in %.1fs", item.id, exc.code, attempt, delay)
                self.wa.outbox.retry(item.id, delay_s=delay, code=exc.code, title=exc.title)
            else:
                log.error("whatsapp send %s failed for good: %s %s", item.id, exc.code, mask(str(exc)))
                self.wa.outbox.fail(item.id, code=exc.code or "error", title=exc.title or str(exc))
            return
        self.wa.outbox.accepted(item.id, wamid)

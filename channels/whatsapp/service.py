"""The WhatsApp channel's pieces built together; `Services.whatsapp` is the instance the app and CLI use."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from channels.whatsapp.campaigns import Campaigns
from channels.whatsapp.consent import CHANNEL, ConsentRecorder
from channels.whatsapp.contacts import Contacts
from channels.whatsapp.formatting import split_text, text_body, to_whatsapp
from channels.whatsapp.graph import GraphClient, HttpxGraphClient
from channels.whatsapp.media import MediaFetcher
from channels.whatsapp.models import MediaRow
from channels.whatsapp.outbox import OutboundDraft, Outbox
from channels.whatsapp.templates import TemplateError, Templates, preview, render
from conversation.inbox import Inbox, InboxWriter, insert_ignoring_duplicates
from core.audit import AuditEvent, AuditSink
from core.db import make_session_factory
from core.lgpd.crypto import cipher_from_settings
from core.lgpd.refs import BlindIndexer, pseudonymous_ref
from core.models import Conversation, Message, utcnow
from core.principals import TokenVerifier
from core.settings import Settings, WhatsAppNumber
from core.store import ConversationStore

if TYPE_CHECKING:
    from channels.whatsapp.processor import InboxProcessor
    from channels.whatsapp.sender import OutboxSender
    from channels.whatsapp.workers import Workers
    from conversation.service import ConversationService
    from core.ratelimit import RateLimiter
    from handoff.service import HandoffService

log = logging.getLogger(__name__)


class SendRefused(ValueError):
    """An outbound message breaks WhatsApp's rules (window, opt-in, template); `key` names the pt-BR reason."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def build_limiter(settings: Settings) -> RateLimiter:
    from core.ratelimit import InMemoryRateLimiter, RedisRateLimiter

    if settings.redis_url:
        import redis

        return RedisRateLimiter(
            redis.Redis.from_url(settings.redis_url), prefix=f"{settings.handoff_redis_prefix}wa:rl:"
        )
    return InMemoryRateLimiter()


class WhatsAppService:
    """Inbox, outbox, contacts, templates and campaigns over one database; the Graph client is built on first use.

    Construction is light: no thread runs and no connection opens until `start()` or the first call.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: ConversationStore,
        conversations: ConversationService,
        consent: ConsentRecorder,
        audit: AuditSink,
        *,
        graph: GraphClient | None = None,
        limiter: RateLimiter | None = None,
        staff_verifier: TokenVerifier | None = None,
        indexer: BlindIndexer | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.conversations = conversations
        self.consent = consent
        self.audit = audit
        self.staff_verifier = staff_verifier
        self.clock = clock
        self.sessions = make_session_factory(engine)
        self.inbox = Inbox(self.sessions, clock=clock)
        self.writer = InboxWriter(engine, on_commit=self.notify_inbox)
        # The LGPD cipher's blind index turns a phone number into the citizen's pseudonymous ref.
        indexer = indexer or cipher_from_settings(settings)
        self.contacts = Contacts(engine, self.sessions, indexer, clock=clock)
        self.outbox = Outbox(engine, self.sessions, clock=clock)
        self.templates = Templates(self.sessions, clock=clock)
        self.campaigns = Campaigns(
            self.sessions, self.outbox, self.templates, consent, refs=partial(pseudonymous_ref, indexer), clock=clock
        )
        self.insert_media = insert_ignoring_duplicates(engine, MediaRow.__table__, ["wamid"])
        self._numbers = {n.phone_number_id: n for n in settings.whatsapp_numbers}
        self._graph = graph
        self._media: MediaFetcher | None = None
        self._limiter = limiter
        self._workers: Workers | None = None
        self._lock = threading.Lock()
        if conversations.handoff is None:
            raise ValueError("the WhatsApp channel needs the handoff: its citizens can always ask for a person")
        # The app's handoff (shared queues and live state): agents' replies and the closing survey reach citizens
        # through this channel.
        self.handoff: HandoffService = conversations.handoff
        from channels.whatsapp.delivery import WhatsAppDelivery

        self.handoff.register_delivery(CHANNEL, WhatsAppDelivery(self))

    # Pieces built on first use

    @property
    def graph(self) -> GraphClient:
        with self._lock:  # sender threads ask for it at once; a second client would leak its connections
            if self._graph is None:
                self._graph = HttpxGraphClient(
                    self.settings.whatsapp_graph_url,
                    self.settings.whatsapp_access_token.get_secret_value(),
                    media_hosts=self.settings.whatsapp_media_hosts,
                )
            return self._graph

    @property
    def media(self) -> MediaFetcher:
        if self._media is None:
            self._media = MediaFetcher(
                self.graph,
                self.settings.data_dir,
                max_bytes=self.settings.whatsapp_media_max_bytes,
                allowed_types=self.settings.whatsapp_media_types,
            )
        return self._media

    @property
    def limiter(self) -> RateLimiter:
        with self._lock:
            if self._limiter is None:
                self._limiter = build_limiter(self.settings)
            return self._limiter

    def processor(self, owner: str | None = None) -> InboxProcessor:
        from channels.whatsapp.processor import InboxProcessor

        return InboxProcessor(self, owner or f"inbox-{uuid.uuid4().hex[:12]}", clock=self.clock)

    def sender(self, owner: str | None = None, **kw: Any) -> OutboxSender:
        from channels.whatsapp.sender import OutboxSender

        return OutboxSender(self, owner or f"outbox-{uuid.uuid4().hex[:12]}", clock=self.clock, **kw)

    # Lifecycle

    def start(self, *, workers: bool) -> None:
        """Start the webhook's inbox writer and, with `workers`, the processing threads in this process."""
        self.writer.start()
        if workers and self._workers is None:
            from channels.whatsapp.workers import Workers

            self._workers = Workers(self)
            self._workers.start()

    def stop(self) -> None:
        if self._workers is not None:
            self._workers.stop()
            self._workers = None
        self.writer.stop()

    def close(self) -> None:
        self.stop()
        if self._graph is not None:
            self._graph.close()

    def notify_inbox(self) -> None:
        if self._workers is not None:
            self._workers.wake_inbox()

    def notify_outbox(self) -> None:
        if self._workers is not None:
            self._workers.wake_outbox()

    def drain(self, *, max_rounds: int = 100) -> dict[str, int]:
        """Process everything due now, in this thread: inbox, campaigns, outbox, until a round finds nothing."""
        processor, sender = self.processor(), self.sender()
        totals = {"inbox": 0, "campaigns": 0, "outbox": 0}
        for _ in range(max_rounds):
            done = {
                "inbox": processor.run_until_idle(),
                "campaigns": self.campaigns.tick(),
                "outbox": sender.run_until_idle(),
            }
            for key, n in done.items():
                totals[key] += n
            if not any(done.values()):
                break
        return totals

    # Lookups

    def number(self, phone_number_id: str) -> WhatsAppNumber:
        """The configured business number; an unlisted one is served by the assistant with no team."""
        found = self._numbers.get(phone_number_id)
        if found is None:
            if self._numbers:
                log.warning("message to an unconfigured WhatsApp number %s", phone_number_id)
            return WhatsAppNumber(phone_number_id=phone_number_id)
        return found

    def default_number(self) -> str:
        if not self._numbers:
            raise SendRefused("whatsapp.unknown_number")
        return next(iter(self._numbers))

    def conversation_state(self, conversation_id: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(Conversation.state).where(Conversation.id == conversation_id))

    def media_state(self, wamid: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(MediaRow.state).where(MediaRow.wamid == wamid))

    # Outbound on staff's behalf

    def send_template(
        self,
        to: str,
        name: str,
        language: str,
        values: Sequence[str],
        *,
        phone_number_id: str | None = None,
        actor: str,
    ) -> int:
        """Queue one approved template to one citizen with an opt-in for its purpose; returns the outbox id."""
        number = phone_number_id or self.default_number()
        template = self.templates.get(name, language)
        if template is None:
            raise SendRefused("whatsapp.template_unknown", name=name)
        try:
            body = render(template, values)
        except TemplateError as exc:
            raise SendRefused(exc.key, **exc.params) from exc
        contact = self.contacts.ensure(number, to)
        if not self.consent.is_opted_in(contact.citizen_ref, CHANNEL, template.purpose):
            raise SendRefused("whatsapp.no_opt_in", purpose=template.purpose)
        key = f"template:{uuid.uuid4().hex}"
        with self.sessions.begin() as session:
            [outbox_id] = self.outbox.add(
                session, contact, [OutboundDraft(key, body, template.purpose)], conversation_id=contact.conversation_id
            )
            if contact.conversation_id is not None:
                session.add(
                    Message(
                        conversation_id=contact.conversation_id,
                        role="agent",
                        text=preview(template, values),
                        citations=[],
                        created_at=self.clock(),
                    )
                )
        self.audit.record(
            AuditEvent(
                actor=actor,
                action="whatsapp.template_send",
                object_type="wa_outbox",
                object_id=str(outbox_id),
                details={"template": name, "language": language},
                subject=contact.citizen_ref,
            )
        )
        self.notify_outbox()
        return outbox_id

    def send_text(self, to: str, text: str, *, phone_number_id: str | None = None, actor: str) -> list[int]:
        """Queue a free-form message from staff; only inside the citizen's 24-hour window."""
        number = phone_number_id or self.default_number()
        contact = self.contacts.find(number, to)
        if contact is None or not contact.window_open(self.clock()):
            raise SendRefused("whatsapp.outside_window")
        key = uuid.uuid4().hex
        drafts = [
            OutboundDraft(f"text:{key}:{i}", text_body(part)) for i, part in enumerate(split_text(to_whatsapp(text)))
        ]
        with self.sessions.begin() as session:
            ids = self.outbox.add(session, contact, drafts, conversation_id=contact.conversation_id)
        self.audit.record(
            AuditEvent(
                actor=actor,
                action="whatsapp.text_send",
                object_type="wa_outbox",
                object_id=str(ids[0]),
                subject=contact.citizen_ref,
            )
        )
        self.notify_outbox()
        return ids

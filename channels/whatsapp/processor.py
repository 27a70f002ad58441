"""Inbox processing: each stored webhook item becomes, exactly once, a turn of the conversation service and/or a
queued reply.

Exactly once rests on one rule: the reply (outbox rows) and "this inbox row is done" are committed in the same
transaction as the turn, which the conversation service opens and this channel joins (`within`). A worker killed
before that commit leaves nothing behind and the row is processed again after its lease; a second worker racing on
the same row fails its commit (the row is no longer pending, the reply key exists) and writes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant.service import InvalidMessage
from channels.whatsapp.backoff import backoff_s
from channels.whatsapp.consent import ALL_PURPOSES, CHANNEL, is_opt_out, normalise_keyword
from channels.whatsapp.contacts import ContactView
from channels.whatsapp.delivery import survey_choice
from channels.whatsapp.formatting import Button, Row, answer_bodies, fit, list_body, text_body
from channels.whatsapp.graph import GraphError
from channels.whatsapp.media import MediaOutcome
from channels.whatsapp.outbox import OutboundDraft
from channels.whatsapp.payloads import Inbound, parse_message, parse_status
from conversation.inbox import AlreadyProcessed, ClaimedItem
from conversation.messages import InboundMessage, Outcome
from core.i18n import t
from core.models import utcnow
from core.privacy import mask
from core.settings import WhatsAppNumber
from core.store import HANDED_OFF
from handoff.records import HandoffError

if TYPE_CHECKING:
    from channels.whatsapp.service import WhatsAppService

log = logging.getLogger(__name__)

HANDOFF_ID = "atende:handoff"
MENU_PREFIX = "atende:menu:"
MENU_KEYWORDS = frozenset({"MENU", "OPCOES"})
# A status can overtake the send's answer; wait this long for its message before calling it an orphan.
ORPHAN_AFTER = timedelta(minutes=10)


class RetryLater(Exception):
    def __init__(self, reason: str, delay_s: float) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


@dataclass
class _ReplyPlan:
    """What the channel answers by itself (no assistant turn): text to record and messages to send."""

    user_text: str
    bodies: list[dict[str, Any]]
    reply_text: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    result: str = "replied"


class InboxProcessor:
    def __init__(self, wa: WhatsAppService, owner: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.wa = wa
        self.owner = owner
        self._clock = clock

    # The loop

    def run_once(self, limit: int = 32, kinds: Sequence[str] | None = None) -> int:
        """Claim and process one batch; returns how many rows were claimed."""
        items = self.wa.inbox.claim(
            self.owner, channel=CHANNEL, limit=limit, lease_s=self.wa.settings.whatsapp_lease_s, kinds=kinds
        )
        for item in items:
            self.process(item)
        if items:
            self.wa.notify_outbox()
        return len(items)

    def run_until_idle(self, max_rounds: int = 100_000) -> int:
        done = 0
        for _ in range(max_rounds):
            n = self.run_once()
            if n == 0:
                break
            done += n
        return done

    def process(self, item: ClaimedItem) -> None:
        settings = self.wa.settings
        try:
            if item.kind == "message":
                self._message(item)
            elif item.kind == "status":
                self._status(item)
            else:
                self._other(item)
        except AlreadyProcessed:
            log.info("inbox row %s was finished by another worker", item.id)
        except RetryLater as exc:
            self.wa.inbox.retry_later(item.id, delay_s=exc.delay_s, error=str(exc))
        except Exception as exc:
            dead = item.attempts >= settings.whatsapp_max_attempts
            log.exception(
                "inbox row %s (%s) failed on attempt %d%s",
                item.id,
                item.kind,
                item.attempts,
                ": giving up" if dead else "",
            )
            delay = backoff_s(item.attempts, settings.whatsapp_retry_base_s, settings.whatsapp_retry_max_s)
            self.wa.inbox.retry_later(
                item.id, delay_s=delay, error=f"{type(exc).__name__}: {mask(str(exc))}", dead=dead
            )

    # Messages

    def _message(self, item: ClaimedItem) -> None:
        inbound = parse_message(item.payload)
        number = self.wa.number(inbound.phone_number_id)
        rating = survey_choice(inbound.reply_id) if inbound.type in ("list_reply", "button_reply") else None
        contact = self.wa.contacts.touch(
            inbound.phone_number_id,
            inbound.sender,
            inbound.sent_at,
            team=number.team,
            new_conversation=rating is None,  # a survey answer belongs to the conversation just closed
        )
        assert contact.conversation_id is not None
        log.info(
            "whatsapp %s from %s in conversation %s", inbound.type, mask(contact.citizen_ref), contact.conversation_id
        )

        if inbound.type in ("text", "button", "button_reply", "list_reply") and (
            is_opt_out(inbound.text) or is_opt_out(inbound.reply_id)
        ):
            self._opt_out(item, inbound, contact)
            return
        if inbound.type == "reaction":
            reaction = inbound.reaction or {}
            self._finish_quietly(
                item,
                contact,
                "whatsapp_reaction",
                {"message_id": reaction.get("message_id"), "emoji": reaction.get("emoji")},
            )
            return

        if rating is not None:
            self._survey(item, inbound, contact, *rating)
            return

        media_state = self._store_media(item, inbound, contact.conversation_id) if inbound.media is not None else None
        state = self.wa.conversation_state(contact.conversation_id)
        if number.flow == "agents" or state in HANDED_OFF:
            self._for_agents(item, inbound, contact, number, media_state)
            return

        # A file we could not fetch is answered as such, caption included: the citizen sends both again.
        question = self._question(inbound) if media_state != "failed" else None
        if question is not None:
            self._ask(item, contact, question, number.team)
            return
        self._reply_plainly(item, contact, self._plan(inbound, media_state))

    def _question(self, inbound: Inbound) -> str | None:
        """The text the assistant should answer, or None when the channel answers by itself."""
        menu = self.wa.settings.whatsapp_menu
        if inbound.type == "text":
            text = (inbound.text or "").strip()
            if menu and normalise_keyword(text) in MENU_KEYWORDS:
                return None
            return text
        if inbound.type in ("button_reply", "list_reply", "button"):
            reply_id = inbound.reply_id or ""
            if reply_id == HANDOFF_ID:
                return t("whatsapp.handoff_request")
            if reply_id.startswith(MENU_PREFIX) and reply_id.removeprefix(MENU_PREFIX).isdigit():
                index = int(reply_id.removeprefix(MENU_PREFIX))
                if index < len(menu):
                    return menu[index]
            return (inbound.text or "").strip() or None
        if inbound.type in ("image", "document") and inbound.media is not None:
            return (inbound.media.caption or "").strip() or None
        return None

    def _plan(self, inbound: Inbound, media_state: str | None) -> _ReplyPlan:
        if inbound.type == "text":  # the menu keyword
            return _ReplyPlan(inbound.text or "", [self.menu_body()], t("whatsapp.menu_text"), result="menu")
        if inbound.media is not None:
            label = t(f"whatsapp.placeholder.{inbound.type}")
            if inbound.media.filename:
                label = f"{label} {inbound.media.filename}"
            if media_state == "rejected":
                max_mb = max(1, self.wa.settings.whatsapp_media_max_bytes // (1024 * 1024))
                reply = t("whatsapp.file_rejected", max_mb=max_mb)
            elif media_state == "failed":
                reply = t("whatsapp.file_failed")
            elif inbound.type == "audio":
                reply = t("whatsapp.audio_received")
            else:
                reply = t("whatsapp.file_received", kind=t(f"whatsapp.kind.{inbound.type}"))
            return _ReplyPlan(label, [text_body(reply)], reply, result=f"media:{media_state}")
        if inbound.type == "location":
            location = inbound.location or {}
            keep = {k: location.get(k) for k in ("latitude", "longitude", "name", "address") if k in location}
            reply = t("whatsapp.location_received")
            return _ReplyPlan(
                t("whatsapp.placeholder.location"),
                [text_body(reply)],
                reply,
                events=[("whatsapp_location", keep)],
                result="location",
            )
        reply = t("whatsapp.unsupported")
        raw_type = str(inbound.raw.get("type") or "unknown")
        return _ReplyPlan(
            t("whatsapp.placeholder.unsupported", type=raw_type), [text_body(reply)], reply, result="unsupported"
        )

    def _store_media(self, item: ClaimedItem, inbound: Inbound, conversation_id: str | None) -> str:
        """Fetch the media once per message and record its metadata; returns stored, rejected or failed.

        A retryable Graph error (429, 5xx, network) retries the whole row with backoff, up to
        ATENDE_WHATSAPP_MAX_ATTEMPTS; then the file is recorded as failed and the citizen is asked to send it again.
        """
        media = inbound.media
        assert media is not None
        known = self.wa.media_state(inbound.wamid)
        if known is not None:
            return known
        settings = self.wa.settings
        try:
            outcome = self.wa.media.fetch(media)
        except GraphError as exc:
            if item.attempts < settings.whatsapp_max_attempts:
                delay = backoff_s(item.attempts, settings.whatsapp_retry_base_s, settings.whatsapp_retry_max_s)
                raise RetryLater(f"media fetch: {exc}", max(delay, exc.retry_after_s or 0.0)) from exc
            log.warning(
                "media %s of inbox row %s could not be fetched after %d attempts, giving up: %s",
                media.media_id,
                item.id,
                item.attempts,
                exc,
            )
            outcome = MediaOutcome("failed", media.mime_type, None, reason=f"gave up after {item.attempts} attempts")
        row = {
            "wamid": inbound.wamid,
            "conversation_id": conversation_id,
            "media_id": media.media_id,
            "kind": media.kind,
            "mime_type": outcome.mime_type or media.mime_type,
            "sha256": media.sha256,
            "file_size": outcome.file_size,
            "filename": media.filename,
            "voice": media.voice,
            "path": outcome.path,
            "state": outcome.state,
            "reason": outcome.reason,
            "created_at": self._clock(),
        }
        with self.wa.sessions.begin() as session:
            session.execute(self.wa.insert_media, [row])
        return outcome.state

    def _ask(self, item: ClaimedItem, contact: ContactView, question: str, team: str | None) -> None:
        def queue_reply(session: Session, outcome: Outcome) -> None:
            self.queue_answer(session, item, contact, outcome)

        self._handle(item, contact, question, team, within=queue_reply)

    def _handle(
        self,
        item: ClaimedItem,
        contact: ContactView,
        text: str,
        team: str | None,
        *,
        within: Callable[[Session, Outcome], None],
        people_only: bool = False,
    ) -> None:
        assert contact.conversation_id is not None
        message = InboundMessage(
            channel=CHANNEL,
            conversation_id=contact.conversation_id,
            text=text,
            sender_ref=contact.citizen_ref,
            client_message_id=item.key,
            team=team,
            people_only=people_only,
        )
        try:
            self.wa.conversations.handle(message, within=within, inbox_id=item.id)
        except InvalidMessage as exc:
            reply = t(exc.key, **exc.params)
            self._reply_plainly(item, contact, _ReplyPlan(text[:2000], [text_body(reply)], reply, result="invalid"))
        except IntegrityError as exc:
            # Another worker committed this reply first; our turn was rolled back with it.
            raise AlreadyProcessed(item.id) from exc

    def queue_answer(self, session: Session, item: ClaimedItem, contact: ContactView, outcome: Outcome) -> None:
        """The bot's answer, or what it says about a handoff, into the outbox in the turn's transaction."""
        citations = [c.as_dict() for c in outcome.citations]
        bodies = self.answer_bodies(outcome.answer, outcome.decision, citations)
        drafts = [OutboundDraft(f"reply:{item.key}:{i}", dict(body)) for i, body in enumerate(bodies)]
        self.wa.outbox.add(session, contact, drafts, conversation_id=contact.conversation_id)

    def answer_bodies(self, answer: str, decision: str | None, citations: Sequence[Any]) -> list[dict[str, Any]]:
        """The assistant's answer for WhatsApp: a "falar com atendente" button when it could not answer."""
        offer = Button(HANDOFF_ID, t("whatsapp.handoff_button")) if decision == "abstained" else None
        return answer_bodies(
            answer,
            [dict(c) for c in citations],
            base_url=self.wa.settings.public_base_url,
            sources_heading=t("sources"),
            offer=offer,
            offer_prompt=t("whatsapp.handoff_prompt"),
        )

    def menu_body(self) -> dict[str, Any]:
        menu = self.wa.settings.whatsapp_menu[: 10 - 1]
        rows = [Row(f"{MENU_PREFIX}{i}", fit(q, 24), fit(q, 72) if len(q) > 24 else None) for i, q in enumerate(menu)]
        rows.append(Row(HANDOFF_ID, t("whatsapp.handoff_button")))
        return list_body(t("whatsapp.menu_text"), t("whatsapp.menu_button"), rows, t("whatsapp.menu_title"))

    def _reply_plainly(self, item: ClaimedItem, contact: ContactView, plan: _ReplyPlan) -> None:
        """The channel's own reply: recorded by the conversation service with the message, queued here, one commit."""
        assert contact.conversation_id is not None
        message = InboundMessage(
            channel=CHANNEL,
            conversation_id=contact.conversation_id,
            text=plan.user_text,
            sender_ref=contact.citizen_ref,
            client_message_id=item.key,
        )

        def queue(session: Session, _outcome: Outcome) -> None:
            drafts = [OutboundDraft(f"reply:{item.key}:{i}", dict(body)) for i, body in enumerate(plan.bodies)]
            self.wa.outbox.add(session, contact, drafts, conversation_id=contact.conversation_id)

        try:
            self.wa.conversations.reply_by_channel(
                message, plan.reply_text, events=plan.events, within=queue, inbox_id=item.id, result=plan.result
            )
        except IntegrityError as exc:
            raise AlreadyProcessed(item.id) from exc

    def _finish_quietly(self, item: ClaimedItem, contact: ContactView, kind: str, payload: dict[str, Any]) -> None:
        assert contact.conversation_id is not None
        with self.wa.sessions.begin() as session:
            self.wa.inbox.finish(session, item.id, kind)
            self.wa.store.add_event_in(session, contact.conversation_id, kind, payload)

    def _opt_out(self, item: ClaimedItem, inbound: Inbound, contact: ContactView) -> None:
        # Recorded before anything else and idempotent, so a crash after it only repeats the confirmation step.
        self.wa.consent.record(
            contact.citizen_ref,
            CHANNEL,
            ALL_PURPOSES,
            "opt_out",
            f"whatsapp:keyword {(inbound.text or '').strip()[:20]}",
            actor=contact.citizen_ref,
        )
        reply = t("whatsapp.opted_out", organization=self.wa.settings.organization_name)
        plan = _ReplyPlan(
            inbound.text or "", [text_body(reply)], reply, events=[("whatsapp_opt_out", {})], result="opt_out"
        )
        self._reply_plainly(item, contact, plan)

    def _for_agents(
        self,
        item: ClaimedItem,
        inbound: Inbound,
        contact: ContactView,
        number: WhatsAppNumber,
        media_state: str | None,
    ) -> None:
        """The message is the agent's, not the bot's: a conversation waiting for or with a person, or a number
        served by people. The conversation service stores it for the agent (the first message to such a number asks
        for one); this channel only adds what the citizen is told: the queue they joined, a file that failed."""
        text = inbound.text or t(f"whatsapp.placeholder.{inbound.type}", type=inbound.type)
        if inbound.media is not None and inbound.media.filename:
            text = f"{text} {inbound.media.filename}"
        failed = t("whatsapp.file_failed") if media_state == "failed" else None
        cid = contact.conversation_id
        assert cid is not None

        def queue_notices(session: Session, outcome: Outcome) -> None:
            if not outcome.forwarded:
                # The conversation went back to the bot meanwhile: the bot answered, as for any message.
                self.queue_answer(session, item, contact, outcome)
                return
            notices = [outcome.answer] if outcome.announces and outcome.answer else []
            if failed is not None:
                self.wa.store.add_message_in(session, cid, "assistant", failed)
                notices.append(failed)
            drafts = [OutboundDraft(f"reply:{item.key}:{i}", text_body(n)) for i, n in enumerate(notices)]
            if drafts:
                self.wa.outbox.add(session, contact, drafts, conversation_id=contact.conversation_id)

        self._handle(item, contact, text, number.team, within=queue_notices, people_only=number.flow == "agents")

    def _survey(self, item: ClaimedItem, inbound: Inbound, contact: ContactView, handoff_id: int, score: int) -> None:
        """The citizen's rating, chosen from the survey list sent when an agent closed the conversation."""
        handoff = self.wa.handoff
        view = handoff.get(handoff_id)
        conversation = self.wa.store.get_conversation(view.conversation_id) if view is not None else None
        if view is None or conversation is None or conversation.citizen_ref != contact.citizen_ref:
            reply = t("handoff.error.no_survey")  # not this citizen's survey: say nothing about it
        else:
            contact = dataclasses.replace(contact, conversation_id=view.conversation_id)
            try:
                handoff.survey(view.conversation_id, score, None, handoff_id=handoff_id)
                reply = t("handoff.survey_thanks")
            except HandoffError as exc:
                # A retry after a crash finds its own rating already stored: the same thanks.
                reply = t("handoff.survey_thanks") if view.survey_score == score else t(exc.key)
        user_text = inbound.text or str(score)
        self._reply_plainly(item, contact, _ReplyPlan(user_text, [text_body(reply)], reply, result="survey"))

    # Statuses and other changes

    def _status(self, item: ClaimedItem) -> None:
        update = parse_status(item.payload)
        with self.wa.sessions.begin() as session:
            outcome = self.wa.outbox.apply_status(session, update)
            if outcome is None:
                if self._clock() - item.received_at < ORPHAN_AFTER:
                    raise RetryLater(f"no message {update.wamid} yet", 5.0)
                outcome = "orphan"
            self.wa.inbox.finish(session, item.id, f"status:{update.status}:{outcome}")

    def _other(self, item: ClaimedItem) -> None:
        change = item.payload.get("change") or {}
        result = "ignored"
        if change.get("field") == "message_template_status_update":
            value = change.get("value") or {}
            name, event = value.get("message_template_name"), str(value.get("event") or "").upper()
            if name:
                changed = self.wa.templates.set_status(str(name), value.get("message_template_language"), event)
                result = f"template:{event}:{changed}"
        self.wa.inbox.complete(item.id, result)

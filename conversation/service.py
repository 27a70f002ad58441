"""The conversation service: the only way a citizen's message enters and a reply leaves, for every channel.

    adapter → `InboundMessage` → inbox (a repeated message gets its first reply) → the agent's, or the assistant's
    draft → one transaction: the turn, the handoff decision, the inbox row done and the channel's own rows
    (`within`, e.g. WhatsApp's outbox) → after the commit, the live queues are told.

The assistant drafts; only this service writes a turn. A crash before the commit leaves nothing behind, and the
message is answered again; a second writer of the same reply fails its commit and writes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.service import Assistant, AssistantReply, Drafted, Token
from conversation.gate import Forwarded, delivered_to_agent, forward_to_agent, hand_off, handoff_notice, with_notice
from conversation.inbox import Inbox, InboxItem
from conversation.messages import InboundMessage, Outcome
from core.db import make_session_factory
from core.i18n import t
from core.store import HANDED_OFF, ConversationStore

if TYPE_CHECKING:
    from handoff.records import Requested
    from handoff.service import HandoffService

log = logging.getLogger(__name__)

# Runs inside the turn's transaction with its outcome: where a channel adds its own rows (an outbox) atomically.
Within = Callable[[Session, Outcome], None]


@dataclass(frozen=True, slots=True)
class _Row:
    """The inbox row of the message being answered; `keep_reply` for a channel that answers a repeat from it."""

    id: int
    keep_reply: bool


class MessageInProgress(Exception):
    """The same message is being answered right now (a retry raced the first send)."""


class ConversationService:
    def __init__(
        self,
        assistant: Assistant,
        handoff: HandoffService | None,
        store: ConversationStore,
        sessions: sessionmaker[Session],
        inbox: Inbox,
        *,
        lease_s: float = 120.0,
    ) -> None:
        self.assistant = assistant
        self.handoff = handoff
        self.store = store
        self._sessions = sessions
        self.inbox = inbox
        self._lease_s = lease_s
        self._owner = f"conversation:{uuid.uuid4().hex[:12]}"

    def handle(self, message: InboundMessage, *, within: Within | None = None, inbox_id: int | None = None) -> Outcome:
        """Answer one message; raises InvalidMessage, ConversationNotFound or MessageInProgress."""
        outcome: Outcome | None = None
        for item in self.handle_stream(message, within=within, inbox_id=inbox_id):
            if isinstance(item, Outcome):
                outcome = item
        assert outcome is not None
        return outcome

    def handle_stream(
        self, message: InboundMessage, *, within: Within | None = None, inbox_id: int | None = None
    ) -> Generator[Token | Outcome, None, None]:
        """`handle` with the answer's text as it is produced, then the Outcome.

        `inbox_id`: the inbox row a worker already holds for this message (a webhook channel); otherwise a message
        with a `client_message_id` gets its row here, and a repeat of it gets the reply stored with the first.
        """
        text = self.assistant.validate(message.text)
        # A webhook's row (`inbox_id`) needs no copy of the reply: its redeliveries are ignored, not answered.
        row = None if inbox_id is None else _Row(inbox_id, keep_reply=False)
        if row is None and message.client_message_id:
            received = self.inbox.receive(
                inbox_item(message),
                conversation_id=message.conversation_id,
                owner=self._owner,
                lease_s=self._lease_s,
            )
            if received.reply is not None:
                yield Outcome.from_stored(received.reply)
                return
            if received.busy or received.id is None:
                raise MessageInProgress(message.client_message_id)
            row = _Row(received.id, keep_reply=True)
        done = False
        try:
            forwarded = self._to_agent(message, text, within, row) if self.handoff is not None else None
            if forwarded is not None:
                yield forwarded
            else:
                drafted: Drafted | None = None
                for part in self.assistant.draft_stream(message.conversation_id, text, message.channel):
                    if isinstance(part, Drafted):
                        drafted = part
                    else:
                        yield part
                assert drafted is not None
                yield self._commit(message, drafted, within, row)
            done = True
        finally:
            if not done and row is not None and row.keep_reply:
                self.inbox.release(row.id)

    def reply_by_channel(
        self,
        message: InboundMessage,
        reply: str | None,
        *,
        events: Sequence[tuple[str, Mapping[str, Any]]] = (),
        within: Within | None = None,
        inbox_id: int | None = None,
        result: str = "replied",
    ) -> Outcome:
        """A message the channel answers by itself, with no assistant turn and no handoff (a menu keyword, an
        opt-out confirmation, a file received, a survey rating): the message, the reply, the channel's events, the
        inbox row done and the channel's own rows (`within`) in one transaction."""
        cid = message.conversation_id
        with self._sessions.begin() as session:
            self.store.add_message_in(session, cid, "user", message.text)
            stored = self.store.add_message_in(session, cid, "assistant", reply) if reply else None
            for kind, payload in events:
                self.store.add_event_in(session, cid, kind, payload)
            outcome = Outcome(
                answer=reply or "",
                decision="answered",
                route="channel",
                message_id=stored.id if stored is not None else None,
            )
            if inbox_id is not None:
                self.inbox.finish(session, inbox_id, result)
            if within is not None:
                within(session, outcome)
        return outcome

    def _is_agents(self, conversation_id: str) -> bool:
        conversation = self.store.get_conversation(conversation_id)
        return conversation is not None and conversation.state in HANDED_OFF

    def _to_agent(self, message: InboundMessage, text: str, within: Within | None, row: _Row | None) -> Outcome | None:
        """The message stored for the agent, when a person has the conversation or the account is served only by
        people; None: the bot answers it."""
        handoff = self.handoff
        assert handoff is not None
        requested: Requested | None = None
        with self._sessions.begin() as session:
            forwarded = forward_to_agent(handoff, session, message.conversation_id, text)
            if forwarded is None and message.people_only:
                forwarded, requested = self._ask_for_people(session, message, text)
            if forwarded is None:
                return None
            outcome = Outcome(
                answer=forwarded.answer,
                decision="handoff",
                route="human",
                message_id=forwarded.message.id,
                handoff_team=forwarded.team,
                announces=requested is not None,
            )
            self._finish(session, outcome, within, row, result="for_agents")
        delivered_to_agent(handoff, forwarded)
        handoff.announce(requested)
        return outcome

    def _ask_for_people(self, session: Session, message: InboundMessage, text: str) -> tuple[Forwarded, Requested]:
        """The first message to an account served only by people: stored, the conversation queued for the account's
        team, and the citizen told so (the notice is stored as the reply)."""
        handoff = self.handoff
        assert handoff is not None
        cid = message.conversation_id
        stored = handoff.citizen_message_in(session, cid, text)
        reason = f"{message.channel}_number"
        requested = handoff.request_in(session, cid, reason=reason, source=reason, team=message.team)
        notice = t("handoff.people_only_received") if requested.queued else handoff_notice(handoff, requested.ticket())
        if notice is not None:
            self.store.add_message_in(session, cid, "assistant", notice)
        return Forwarded(stored, notice or "", requested.team), requested

    def _commit(self, message: InboundMessage, drafted: Drafted, within: Within | None, row: _Row | None) -> Outcome:
        cid = message.conversation_id
        requested: Requested | None = None
        # A handoff the turn's own tool made (handoff_to_human) is committed already: its queue is the team's.
        queued_team = self._queue_of(cid) if self.handoff is not None and drafted.reply.decision == "handoff" else None
        with self._sessions.begin() as session:
            recorded = self.store.record_exchange_in(session, drafted.exchange)
            reply = drafted.recorded(recorded)
            answer, decision = reply.answer, reply.decision
            team = reply.handoff_team
            if self.handoff is not None:
                called = [str(call["name"]) for call in reply.tool_calls if call.get("ok")]
                requested = hand_off(self.handoff, session, cid, team=message.team, tools=called)
                if requested is not None:
                    team = requested.team
                    told = with_notice(self.handoff, answer, requested)
                    if told != answer:
                        answer, decision = told, "handoff"
                elif decision == "handoff":
                    team = queued_team or team or message.team or self.handoff.config.default_team
            outcome = _outcome(reply, answer, decision, team)
            self._finish(session, outcome, within, row, result=f"turn:{recorded.turn_id}")
        if self.handoff is not None:
            self.handoff.announce(requested)
        return outcome

    def _queue_of(self, conversation_id: str) -> str | None:
        handoff = self.handoff
        assert handoff is not None
        if not self._is_agents(conversation_id):
            return None
        current = handoff.current(conversation_id)
        return current.team if current is not None else None

    def _finish(
        self, session: Session, outcome: Outcome, within: Within | None, row: _Row | None, *, result: str
    ) -> None:
        if row is not None:
            self.inbox.finish(session, row.id, result, reply=outcome.stored() if row.keep_reply else None)
        if within is not None:
            within(session, outcome)


def inbox_item(message: InboundMessage) -> InboxItem:
    """The inbox row of a message its channel answers at once. The key holds the conversation: a client's ids are
    unique only within it. The text is not copied: the stored message holds it."""
    key = f"{message.conversation_id}:{message.client_message_id}"
    return InboxItem(message.channel, key, "message", None, {})


def _outcome(reply: AssistantReply, answer: str, decision: str, team: str | None) -> Outcome:
    return Outcome(
        answer=answer,
        decision=decision,  # type: ignore[arg-type]
        route=reply.route,
        citations=tuple(reply.citations),
        message_id=reply.message_id,
        timings_ms=reply.timings_ms,
        handoff_team=team,
        reply=reply,
    )


def build_conversations(
    engine: Engine, store: ConversationStore, assistant: Assistant, handoff: HandoffService | None
) -> ConversationService:
    """The one path over these parts, on sessions and an inbox of its own; without a handoff, the assistant's own
    replies (nothing is ever queued for a person)."""
    sessions = make_session_factory(engine)
    return ConversationService(assistant, handoff, store, sessions, Inbox(sessions))

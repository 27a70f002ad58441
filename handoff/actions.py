"""What the agent does with a conversation they serve: reply (translated for the citizen when their languages
differ), transfer it to another team, close it with a protocol number; and the citizen's survey of the service.

A reply or a closing message reaches the citizen through their channel's `Delivery` in the transaction that stores
it, so the message and its delivery are committed together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.agent_aids.summary import summarize
from assistant.agent_aids.translation import normalize_language
from core.i18n import t
from core.models import Conversation, Event, Message
from core.store import MessageView
from handoff.annotations import Annotations, citizen_text
from handoff.context import HandoffContext, assigned_row, channel_of, move, served_row
from handoff.delivery import DeliveryRefused, Outgoing, Survey
from handoff.dispatch import Dispatcher
from handoff.models import Handoff
from handoff.queue import Queues
from handoff.records import QUEUE_TOPIC, HandoffError, HandoffView, Ticket, conversation_topic, view

log = logging.getLogger(__name__)

CLOSE_REASONS: Final = (
    "resolved",
    "information_given",
    "protocol_opened",
    "citizen_left",
    "citizen_inactive",
    "wrong_team",
    "other",
)


class ServiceProtocols(Protocol):
    """Gives each closed service its protocol number (domain.contacts.ContactProtocols: the protocol book).

    Called inside the closing transaction, so a close that fails gives the number back and no protocol is left
    without its service.
    """

    def open_for(
        self,
        session: Session,
        conversation_id: str,
        summary: Mapping[str, Any],
        *,
        team: str,
        agent: str,
        reason_code: str,
    ) -> str: ...


class AgentActions:
    def __init__(
        self,
        context: HandoffContext,
        annotations: Annotations,
        queues: Queues,
        dispatcher: Dispatcher,
        *,
        protocols: ServiceProtocols | None = None,
    ) -> None:
        self._context = context
        self._annotations = annotations
        self._queues = queues
        self._dispatcher = dispatcher
        # None (bare wiring): a closed service gets no protocol number, and the citizen is not given one.
        self.protocols = protocols

    def reply(
        self,
        conversation_id: str,
        agent: str,
        text: str,
        *,
        override: bool = False,
        agent_language: str | None = None,
    ) -> MessageView:
        """The agent's message to the citizen (only the assigned agent may send).

        The conversation's channel delivers it in the same transaction (WhatsApp queues it in its outbox, keyed by
        the message id, so it is sent once); when the channel refuses (WhatsApp's 24-hour window has closed)
        nothing is stored and the agent is told why. `override`: a supervisor steps into a service another agent
        holds (recorded as an intervention; the agent's first-response time is theirs alone).

        A citizen whose language is not the agent's (`agent_language`, else their profile's) gets the translation
        with the agent's words below it (`citizen_text`); the message keeps the agent's words and its annotation
        the translation. The model runs before the transaction opens; when it fails the agent's words go as written.
        """
        ctx = self._context
        text = text.strip()
        if not text:
            raise HandoffError("empty_message", "error.empty_message", status=422)
        with ctx.sessions() as session:  # checked again below; this spares the model a message that is refused
            if override:
                served_row(session, conversation_id)
            else:
                assigned_row(session, conversation_id, agent)
            citizen = normalize_language(
                session.scalar(select(Conversation.language).where(Conversation.id == conversation_id))
            )
            writer = agent_language or ctx.language_of(session, agent)
        language = normalize_language(writer)
        translation = self._annotations.translate(text, language, citizen)
        now = ctx.clock()
        with ctx.sessions.begin() as session:
            if override:
                row = served_row(session, conversation_id)
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="supervisor_intervened",
                        payload={"supervisor": agent, "agent": row.agent},
                        created_at=now,
                    )
                )
            else:
                row = assigned_row(session, conversation_id, agent)
            if row.first_response_at is None and not override:
                row.first_response_at = now
            message = Message(conversation_id=conversation_id, role="agent", text=text, citations=[], created_at=now)
            session.add(message)
            session.flush()
            outgoing = text
            if translation is not None and citizen is not None:
                outgoing = citizen_text(text, translation, citizen)
                annotation = self._annotations.row(session, message.id)
                annotation.language, annotation.translation = language, translation
                annotation.translation_language = citizen
            try:
                ctx.delivery(channel_of(session, conversation_id)).deliver(
                    session, conversation_id, Outgoing(f"agent:{message.id}", outgoing)
                )
            except DeliveryRefused as exc:
                log.info("agent reply in conversation %s not delivered: %s", conversation_id, exc.code)
                raise HandoffError(exc.code, exc.key) from exc
            sent = MessageView(message.id, conversation_id, "agent", text, None, (), now)
        ctx.push(sent)
        return sent

    def transfer(self, conversation_id: str, agent: str, team: str) -> Ticket:
        """Back to the queue, of another team; the summary travels with the conversation."""
        ctx = self._context
        self._queues.require_team(team)
        now = ctx.clock()
        with ctx.sessions.begin() as session:
            row = assigned_row(session, conversation_id, agent)
            move(session, conversation_id, "with_agent", "waiting", now)
            row.status = "closed"
            row.closed_at = now
            row.close_reason = "transferred"
            requeued = Handoff(
                conversation_id=conversation_id,
                team=team,
                reason=row.reason,
                source="transfer",
                status="waiting",
                requested_at=now,
            )
            session.add(requeued)
            session.flush()
            order = requeued.id
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_transferred",
                    payload={"from_agent": agent, "from_team": row.team, "to_team": team},
                    created_at=now,
                )
            )
        ctx.live.enqueue(team, conversation_id, order)
        ctx.live.publish(QUEUE_TOPIC, {"event": "queued", "conversation_id": conversation_id, "team": team})
        self._dispatcher.route({team, *self._dispatcher.profile(agent).teams})
        return self._queues.ticket(conversation_id)

    def close(self, conversation_id: str, agent: str, reason_code: str, *, override: bool = False) -> HandoffView:
        """End the service: the summary is stored, the citizen gets a closing message and the survey.

        `override`: `agent` is a supervisor (or the inactivity sweep) closing a service someone else holds.
        """
        ctx = self._context
        if reason_code not in CLOSE_REASONS:
            raise HandoffError("invalid_reason", "handoff.error.invalid_reason", status=422)
        summary = summarize(ctx.store.list_messages(conversation_id))
        now = ctx.clock()
        locale = ctx.config.locale
        with ctx.sessions.begin() as session:
            row = served_row(session, conversation_id) if override else assigned_row(session, conversation_id, agent)
            move(session, conversation_id, "with_agent", "closed", now)
            row.status = "closed"
            row.closed_at = now
            row.close_reason = reason_code
            row.summary = summary
            if self.protocols is not None:
                row.protocol_number = self.protocols.open_for(
                    session, conversation_id, summary, team=row.team, agent=agent, reason_code=reason_code
                )
            reference = row.protocol_number
            if reference is None:
                closing = t("handoff.closed_unnumbered", locale)
            else:
                closing = t("handoff.closed", locale, reference=reference)
            session.add(
                Message(conversation_id=conversation_id, role="system", text=closing, citations=[], created_at=now)
            )
            try:
                ctx.delivery(channel_of(session, conversation_id)).deliver(
                    session, conversation_id, Outgoing(f"close:{row.id}", closing, Survey(row.id, reference))
                )
            except DeliveryRefused as exc:
                # Closing never waits on the channel: the service ends; the citizen was not told (staff see why).
                log.warning("closing message of conversation %s not delivered: %s", conversation_id, exc.code)
                session.add(
                    Event(
                        conversation_id=conversation_id,
                        kind="handoff_close_not_delivered",
                        payload={"code": exc.code},
                        created_at=now,
                    )
                )
            session.add(
                Event(
                    conversation_id=conversation_id,
                    kind="handoff_closed",
                    payload={"agent": agent, "reason": reason_code, "protocol_number": row.protocol_number},
                    created_at=now,
                )
            )
            session.flush()
            closed = view(row)
        ctx.live.publish(conversation_topic(conversation_id), {"event": "closed", "reason": reason_code})
        ctx.live.publish(QUEUE_TOPIC, {"event": "closed", "conversation_id": conversation_id, "team": closed.team})
        if closed.agent:  # the agent has room again: least-busy teams may give them the next conversation
            self._dispatcher.route(self._dispatcher.profile(closed.agent).teams)
        return closed

    def survey(self, conversation_id: str, score: int, comment: str | None, *, handoff_id: int | None = None) -> None:
        """The citizen's rating of the conversation's latest closed service (or of `handoff_id`), once."""
        if not 1 <= score <= 5:
            raise HandoffError("invalid_score", "handoff.error.invalid_score", status=422)
        with self._context.sessions.begin() as session:
            stmt = select(Handoff).where(Handoff.conversation_id == conversation_id, Handoff.status == "closed")
            if handoff_id is not None:
                stmt = stmt.where(Handoff.id == handoff_id)
            row = session.scalars(stmt.order_by(Handoff.id.desc()).limit(1)).first()
            if row is None or row.survey_score is not None:
                raise HandoffError("no_survey", "handoff.error.no_survey")
            row.survey_score = score
            row.survey_comment = (comment or "").strip()[:2000] or None

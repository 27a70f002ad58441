"""The personal-data sources of the core tables: conversations (with their messages, turns and events) and
consent. Anonymising keeps every row, date, decision and count, so statistics survive; only text that can
identify someone is replaced.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, null, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.data_subjects import ANONYMISED_REF_PREFIX, DataSubject
from core.i18n import t
from core.lgpd.models import AnonymisedConversation, ConsentRecord
from core.models import Conversation, Event, Message, Turn, isoformat, utcnow
from core.privacy import mask_data
from domain.models import Protocol
from handoff.models import Handoff, MessageAnnotation

__all__ = [
    "ConsentDataSource",
    "ConversationDataSource",
    "anonymise_conversations",
    "rows_changed",
]


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and return how many rows it changed."""
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)


def _without_encrypted(value: Any) -> Any:
    """A copy without the keys ending in `_encrypted`: values encrypted at rest (the CPF the action dialogue keeps
    between two questions) that masking cannot see into."""
    if isinstance(value, dict):
        return {k: _without_encrypted(v) for k, v in value.items() if not str(k).endswith("_encrypted")}
    if isinstance(value, list):
        return [_without_encrypted(item) for item in value]
    return value


def anonymise_conversations(session: Session, conversation_ids: Sequence[str], *, reason: str, now: datetime) -> int:
    """Replace the texts of these conversations with a placeholder and unlink them from the citizen.

    Returns the rows changed. Conversations already anonymised are skipped, so calling it twice is harmless.
    """
    if not conversation_ids:
        return 0
    done = set(
        session.scalars(
            select(AnonymisedConversation.conversation_id).where(
                AnonymisedConversation.conversation_id.in_(conversation_ids)
            )
        )
    )
    ids = [cid for cid in conversation_ids if cid not in done]
    if not ids:
        return 0
    placeholder = t("lgpd.anonymised_text")
    touched = 0
    touched += rows_changed(session, update(Message).where(Message.conversation_id.in_(ids)).values(text=placeholder))
    touched += rows_changed(  # a message's translation says what the message said
        session,
        update(MessageAnnotation)
        .where(
            MessageAnnotation.message_id.in_(select(Message.id).where(Message.conversation_id.in_(ids))),
            MessageAnnotation.translation.is_not(None),
        )
        .values(translation=placeholder),
    )
    touched += rows_changed(
        session,
        update(Turn)
        .where(Turn.conversation_id.in_(ids))
        .values(user_text=placeholder, rewritten_query=placeholder, answer=placeholder),
    )
    session.execute(
        update(Turn).where(Turn.conversation_id.in_(ids), Turn.error.is_not(None)).values(error=placeholder)
    )
    # A closed service's summary, and the protocol that recorded it (decision 0033), quote the citizen.
    numbers = select(Handoff.protocol_number).where(
        Handoff.conversation_id.in_(ids), Handoff.protocol_number.is_not(None)
    )
    touched += rows_changed(
        session, update(Protocol).where(Protocol.number.in_(numbers)).values(description=placeholder)
    )
    touched += rows_changed(
        session,
        update(Handoff).where(Handoff.conversation_id.in_(ids), Handoff.summary.is_not(None)).values(summary=null()),
    )
    # Event payloads are free-form: mask their strings, keep their kinds and dates.
    for event in session.scalars(select(Event).where(Event.conversation_id.in_(ids))):
        masked = mask_data(_without_encrypted(event.payload))
        if masked != event.payload:
            event.payload = masked
            touched += 1
    touched += rows_changed(
        session,
        update(Conversation)
        .where(Conversation.id.in_(ids))
        # updated_at is kept: it is the last activity, which statistics and the retention clock read.
        .values(citizen_ref=None, updated_at=Conversation.updated_at),
    )
    session.add_all(AnonymisedConversation(conversation_id=cid, reason=reason, anonymised_at=now) for cid in ids)
    session.flush()
    return touched


class ConversationDataSource:
    """Conversations whose `citizen_ref` is one of the subject's refs, with messages, turn log and events."""

    name = "conversations"

    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    @staticmethod
    def _ids(session: Session, subject: DataSubject) -> list[str]:
        if not subject.citizen_refs:
            return []
        stmt = (
            select(Conversation.id)
            .where(Conversation.citizen_ref.in_(subject.citizen_refs))
            .order_by(Conversation.created_at, Conversation.id)
        )
        return list(session.scalars(stmt))

    def export(self, subject: DataSubject) -> dict[str, Any]:
        with self._sessions() as session:
            ids = self._ids(session, subject)
            conversations = []
            for cid in ids:
                conversation = session.get_one(Conversation, cid)
                conversations.append(
                    {
                        "id": conversation.id,
                        "channel": conversation.channel,
                        "state": conversation.state,
                        "language": conversation.language,
                        "citizen_ref": conversation.citizen_ref,
                        "created_at": isoformat(conversation.created_at),
                        "updated_at": isoformat(conversation.updated_at),
                        "messages": [
                            {
                                "role": m.role,
                                "text": m.text,
                                "decision": m.decision,
                                "created_at": isoformat(m.created_at),
                            }
                            for m in session.scalars(
                                select(Message).where(Message.conversation_id == cid).order_by(Message.id)
                            )
                        ],
                        "events": [
                            {"kind": e.kind, "payload": e.payload, "created_at": isoformat(e.created_at)}
                            for e in session.scalars(
                                select(Event).where(Event.conversation_id == cid).order_by(Event.id)
                            )
                        ],
                        "turn_log": [
                            {
                                "created_at": isoformat(turn.created_at),
                                "question_masked": turn.user_text,
                                "answer_masked": turn.answer,
                                "decision": turn.decision,
                                "model_id": turn.model_id,
                            }
                            for turn in session.scalars(
                                select(Turn).where(Turn.conversation_id == cid).order_by(Turn.id)
                            )
                        ],
                    }
                )
        return {"conversations": conversations}

    def erase(self, subject: DataSubject) -> int:
        with self._sessions.begin() as session:
            return anonymise_conversations(session, self._ids(session, subject), reason="erase", now=self._clock())


class ConsentDataSource:
    """Consent history under the subject's refs. Erasing keeps the rows (counts of opt-ins and opt-outs per
    channel and purpose) under a fresh random ref that leads back to no one."""

    name = "consent"

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def export(self, subject: DataSubject) -> dict[str, Any]:
        if not subject.citizen_refs:
            return {"history": []}
        stmt = (
            select(ConsentRecord)
            .where(ConsentRecord.citizen_ref.in_(subject.citizen_refs))
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        )
        with self._sessions() as session:
            history = [
                {
                    "citizen_ref": row.citizen_ref,
                    "channel": row.channel,
                    "purpose": row.purpose,
                    "status": row.status,
                    "source": row.source,
                    "recorded_at": isoformat(row.recorded_at),
                }
                for row in session.scalars(stmt)
            ]
        return {"history": history}

    def erase(self, subject: DataSubject) -> int:
        if not subject.citizen_refs:
            return 0
        fresh = ANONYMISED_REF_PREFIX + uuid.uuid4().hex
        with self._sessions.begin() as session:
            # A consent the citizen gave themselves (a WhatsApp "SAIR") names them as its actor too.
            session.execute(
                update(ConsentRecord)
                .where(
                    ConsentRecord.citizen_ref.in_(subject.citizen_refs), ConsentRecord.actor.in_(subject.citizen_refs)
                )
                .values(actor=fresh)
            )
            return rows_changed(
                session,
                update(ConsentRecord)
                .where(ConsentRecord.citizen_ref.in_(subject.citizen_refs))
                .values(citizen_ref=fresh),
            )

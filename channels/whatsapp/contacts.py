"""Citizens as WhatsApp knows them, each tied to their current conversation on one business number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from channels.whatsapp.models import ContactRow
from channels.whatsapp.payloads import Sender
from conversation.inbox import insert_ignoring_duplicates
from core.lgpd.refs import BlindIndexer, is_phone_ref, phone_ref
from core.models import Conversation, Event, utcnow

CHANNEL = "whatsapp"
# Meta's customer-service window: free-form messages only within 24 hours of the citizen's last message.
SERVICE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ContactView:
    id: int
    phone_number_id: str
    citizen_ref: str
    bsuid: str | None
    wa_id: str | None
    conversation_id: str | None
    last_inbound_at: datetime | None

    def window_open(self, now: datetime) -> bool:
        return self.last_inbound_at is not None and now - self.last_inbound_at < SERVICE_WINDOW

    def recipient(self) -> dict[str, str]:
        """How the Graph API addresses this citizen: the phone number when shared, else the BSUID."""
        if self.wa_id:
            return {"to": self.wa_id}
        return {"recipient": self.bsuid or self.citizen_ref.removeprefix("whatsapp:")}


def contact_view(row: ContactRow) -> ContactView:
    return ContactView(
        id=row.id,
        phone_number_id=row.phone_number_id,
        citizen_ref=row.citizen_ref,
        bsuid=row.bsuid,
        wa_id=row.wa_id,
        conversation_id=row.conversation_id,
        last_inbound_at=row.last_inbound_at,
    )


class Contacts:
    """Citizens by business number. A citizen's ref is "whatsapp:<BSUID>", or, for one Meta knows only by phone
    number, "whatsapp:tel.<keyed hash>" (core.lgpd.refs): the number itself stays in `wa_id`, which erase clears."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        indexer: BlindIndexer,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._indexer = indexer
        self._clock = clock
        self._insert = insert_ignoring_duplicates(engine, ContactRow.__table__, ["phone_number_id", "citizen_ref"])

    def citizen_ref(self, sender: Sender) -> str:
        if sender.bsuid:
            return f"{CHANNEL}:{sender.bsuid}"
        return phone_ref(self._indexer, CHANNEL, sender.wa_id or "")

    def touch(
        self,
        phone_number_id: str,
        sender: Sender,
        sent_at: datetime,
        *,
        team: str | None = None,
        new_conversation: bool = True,
    ) -> ContactView:
        """Record that the citizen wrote at `sent_at`, and return them with an open conversation.

        Safe to repeat and to race: the contact is an insert-or-ignore, the window only moves forward, and
        a conversation is created only where none is linked yet. Without `new_conversation` (the answer to a
        closed conversation's survey) a closed conversation stays linked.
        """
        now = self._clock()
        sent_at = min(sent_at, now)
        citizen_ref = self.citizen_ref(sender)
        with self._sessions.begin() as session:
            row = self._find(session, phone_number_id, citizen_ref, sender.wa_id)
            if row is None:
                session.execute(
                    self._insert,
                    [
                        {
                            "phone_number_id": phone_number_id,
                            "citizen_ref": citizen_ref,
                            "bsuid": sender.bsuid,
                            "wa_id": sender.wa_id,
                            "profile_name": sender.name,
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )
                row = self._find(session, phone_number_id, citizen_ref, sender.wa_id)
                assert row is not None
            if sender.bsuid and not row.bsuid:
                row.bsuid = sender.bsuid
            if sender.wa_id:
                row.wa_id = sender.wa_id
            if sender.name:
                row.profile_name = sender.name
            if row.last_inbound_at is None or sent_at > row.last_inbound_at:
                row.last_inbound_at = sent_at
            row.updated_at = now
            linked = row.conversation_id is not None and not new_conversation
            if not linked and not self._conversation_open(session, row.conversation_id):
                conversation = Conversation(
                    channel=CHANNEL,
                    language="pt-BR",
                    state="bot",
                    citizen_ref=row.citizen_ref,
                    created_at=now,
                    updated_at=now,
                )
                session.add(conversation)
                session.flush()
                session.add(
                    Event(
                        conversation_id=conversation.id,
                        kind="whatsapp_conversation_started",
                        payload={"phone_number_id": phone_number_id, "team": team},
                        created_at=now,
                    )
                )
                row.conversation_id = conversation.id
            session.flush()
            return contact_view(row)

    @staticmethod
    def _find(session: Session, phone_number_id: str, citizen_ref: str, wa_id: str | None) -> ContactRow | None:
        stmt = select(ContactRow).where(
            ContactRow.phone_number_id == phone_number_id, ContactRow.citizen_ref == citizen_ref
        )
        row = session.scalars(stmt.with_for_update()).first()
        if row is None and wa_id:
            # Known by phone from before Meta sent business-scoped ids: keep that contact and its history.
            by_phone = select(ContactRow).where(
                ContactRow.phone_number_id == phone_number_id, ContactRow.wa_id == wa_id
            )
            row = session.scalars(by_phone.with_for_update()).first()
        return row

    @staticmethod
    def _conversation_open(session: Session, conversation_id: str | None) -> bool:
        if conversation_id is None:
            return False
        state = session.scalar(select(Conversation.state).where(Conversation.id == conversation_id))
        return state is not None and state != "closed"

    def get(self, contact_id: int) -> ContactView | None:
        with self._sessions() as session:
            row = session.get(ContactRow, contact_id)
            return None if row is None else contact_view(row)

    def find(self, phone_number_id: str, who: str) -> ContactView | None:
        """A contact by citizen_ref, business-scoped id or phone number."""
        ref = who if who.startswith("whatsapp:") else f"whatsapp:{who}"
        if is_phone_ref(ref):
            ref = phone_ref(self._indexer, CHANNEL, ref.removeprefix("whatsapp:"))
        digits = "".join(ch for ch in who if ch.isdigit())
        with self._sessions() as session:
            for cond in (ContactRow.citizen_ref == ref, ContactRow.bsuid == who, ContactRow.wa_id == digits):
                row = session.scalars(
                    select(ContactRow).where(ContactRow.phone_number_id == phone_number_id, cond)
                ).first()
                if row is not None:
                    return contact_view(row)
        return None

    def ensure(self, phone_number_id: str, who: str) -> ContactView:
        """The contact for an outbound-only citizen (a template to a phone number never seen inbound)."""
        found = self.find(phone_number_id, who)
        if found is not None:
            return found
        digits = "".join(ch for ch in who if ch.isdigit())
        is_phone = is_phone_ref(who if who.startswith("whatsapp:") else f"whatsapp:{who}")
        sender = Sender(
            bsuid=None if is_phone else who.removeprefix("whatsapp:"), wa_id=digits if is_phone else None, name=None
        )
        citizen_ref = self.citizen_ref(sender)
        now = self._clock()
        with self._sessions.begin() as session:
            session.execute(
                self._insert,
                [
                    {
                        "phone_number_id": phone_number_id,
                        "citizen_ref": citizen_ref,
                        "bsuid": sender.bsuid,
                        "wa_id": sender.wa_id,
                        "created_at": now,
                        "updated_at": now,
                    }
                ],
            )
        found = self.find(phone_number_id, citizen_ref)
        assert found is not None
        return found

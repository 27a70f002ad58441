"""What the WhatsApp channel holds about a citizen, for LGPD export and erase: their contacts (phone number,
profile name) and the media they sent. Conversations and consent are covered by their own sources."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.whatsapp.models import ContactRow, MediaRow
from core.data_subjects import ANONYMISED_REF_PREFIX, DataSubject

log = logging.getLogger(__name__)


class WhatsAppDataSource:
    name = "whatsapp"

    def __init__(self, sessions: sessionmaker[Session], data_dir: Path) -> None:
        self._sessions = sessions
        self._data_dir = data_dir

    def _contacts(self, session: Session, subject: DataSubject) -> list[ContactRow]:
        refs = [ref for ref in subject.citizen_refs if ref.startswith("whatsapp:")]
        if not refs:
            return []
        return list(session.scalars(select(ContactRow).where(ContactRow.citizen_ref.in_(refs))))

    def _media(self, session: Session, contacts: list[ContactRow]) -> list[MediaRow]:
        conversations = [c.conversation_id for c in contacts if c.conversation_id]
        if not conversations:
            return []
        return list(session.scalars(select(MediaRow).where(MediaRow.conversation_id.in_(conversations))))

    def export(self, subject: DataSubject) -> dict[str, Any]:
        with self._sessions() as session:
            contacts = self._contacts(session, subject)
            media = self._media(session, contacts)
            return {
                "contacts": [
                    {
                        "business_number": c.phone_number_id,
                        "citizen_ref": c.citizen_ref,
                        "phone": c.wa_id,
                        "profile_name": c.profile_name,
                        "last_message_at": c.last_inbound_at.isoformat() if c.last_inbound_at else None,
                        "since": c.created_at.isoformat(),
                    }
                    for c in contacts
                ],
                "media": [
                    {
                        "kind": m.kind,
                        "mime_type": m.mime_type,
                        "filename": m.filename,
                        "size": m.file_size,
                        "received_at": m.created_at.isoformat(),
                        "stored": m.path is not None,
                    }
                    for m in media
                ],
            }

    def erase(self, subject: DataSubject) -> int:
        """Forget the phone number, business-scoped id and profile name, delete the media files; rows stay for
        statistics under a fresh random ref (as consent rows do), so not even the pseudonym links them back."""
        touched = 0
        with self._sessions.begin() as session:
            contacts = self._contacts(session, subject)
            for media in self._media(session, contacts):
                if media.path:
                    path = self._data_dir / media.path
                    # Content-addressed: another citizen may have sent the very same file; keep it for them.
                    shared = session.scalar(
                        select(MediaRow.id).where(MediaRow.path == media.path, MediaRow.id != media.id).limit(1)
                    )
                    if shared is None:
                        path.unlink(missing_ok=True)
                media.path = None
                media.filename = None
                touched += 1
            for contact in contacts:
                contact.wa_id = None
                contact.bsuid = None
                contact.profile_name = None
                contact.citizen_ref = ANONYMISED_REF_PREFIX + uuid.uuid4().hex
                touched += 1
        return touched

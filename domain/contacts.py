"""Service-contact protocols: the protocol number a service by a person gets when it ends.

`ContactProtocols` is the handoff's `ServiceProtocols` (handoff.actions): closing a handoff records the
contact in the protocol book, in the closing transaction, linked to the citizen when the conversation knows who
they are (docs/decisions/0033-saved-replies-and-service-protocols.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.orm import Session

from core.clock import Clock
from core.i18n import t
from core.models import Conversation
from domain.models import Citizen, VerifiedConversation
from domain.protocols import ProtocolBook

_CITIZEN_REF: Final = re.compile(r"citizen:(\d+)")


def contact_description(summary: Mapping[str, Any], *, team: str, reason_code: str) -> str:
    """The protocol's description: what the citizen came about and what is pending, from the (masked) summary."""
    none = t("console.summary.none")
    lines = [
        f"{t('protocol.contact.team')}: {team}",
        f"{t('console.close_reason')}: {t(f'console.close.{reason_code}')}",
        f"{t('console.summary.reason')}: {' / '.join(summary.get('reason') or []) or none}",
    ]
    if summary.get("pending"):
        lines.append(f"{t('console.summary.pending')}: {summary['pending']}")
    return "\n".join(lines)


class ContactProtocols:
    """Opens the protocol of a closed service through the protocol book, inside the caller's transaction."""

    def __init__(self, book: ProtocolBook, clock: Clock) -> None:
        self._book = book
        self._clock = clock

    def open_for(
        self,
        session: Session,
        conversation_id: str,
        summary: Mapping[str, Any],
        *,
        team: str,
        agent: str,
        reason_code: str,
    ) -> str:
        conversation = session.get(Conversation, conversation_id)
        protocol = self._book.record_contact_in(
            session,
            description=contact_description(summary, team=team, reason_code=reason_code),
            citizen_id=self.citizen_of(session, conversation_id),
            team=team,
            actor=agent,
            channel=None if conversation is None else conversation.channel,
            note=t(f"console.close.{reason_code}"),
        )
        return protocol.number

    def citizen_of(self, session: Session, conversation_id: str) -> int | None:
        """Who the conversation's citizen is: its `citizen:<id>` ref, else a verification still valid now."""
        conversation = session.get(Conversation, conversation_id)
        match = _CITIZEN_REF.fullmatch(conversation.citizen_ref or "") if conversation is not None else None
        if match is not None and session.get(Citizen, int(match[1])) is not None:
            return int(match[1])
        verified = session.get(VerifiedConversation, conversation_id)
        if verified is not None and verified.expires_at > self._clock.now():
            return verified.citizen_id
        return None

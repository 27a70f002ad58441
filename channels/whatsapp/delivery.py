"""The human side of a handoff on WhatsApp: agents' messages and the closing survey go out through the outbox.

`HandoffService` calls `deliver` inside the transaction that stores the agent's message (or closes the service),
so the message and its outbox rows are committed together: keyed by the message id (`agent:<id>:<part>`) or the
handoff id (`close:<id>:0`), each is queued once, and the outbox sends it with its retries (decision 0025).
Free text goes only inside the citizen's 24-hour window; outside it the agent is told at once, nothing is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from channels.whatsapp.contacts import ContactView, contact_view
from channels.whatsapp.formatting import Row, list_body, split_text, text_body, to_whatsapp
from channels.whatsapp.models import ContactRow
from channels.whatsapp.outbox import OutboundDraft
from core.i18n import t
from handoff.delivery import DeliveryRefused, Outgoing, Survey

if TYPE_CHECKING:
    from channels.whatsapp.service import WhatsAppService

SURVEY_PREFIX: Final = "atende:survey:"
SCORES: Final = (5, 4, 3, 2, 1)


def survey_choice(reply_id: str | None) -> tuple[int, int] | None:
    """(handoff id, score) from a survey row the citizen chose (`atende:survey:<handoff id>:<score>`), else None."""
    if not reply_id or not reply_id.startswith(SURVEY_PREFIX):
        return None
    parts = reply_id.removeprefix(SURVEY_PREFIX).split(":")
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    handoff_id, score = int(parts[0]), int(parts[1])
    return (handoff_id, score) if 1 <= score <= 5 else None


def survey_body(survey: Survey) -> dict[str, Any]:
    """The satisfaction survey as a WhatsApp list: five rows, best first (3 reply buttons would not fit 1–5)."""
    rows = [Row(f"{SURVEY_PREFIX}{survey.handoff_id}:{score}", t(f"whatsapp.survey.score_{score}")) for score in SCORES]
    if survey.reference is None:
        text = t("whatsapp.survey.text_unnumbered")
    else:
        text = t("whatsapp.survey.text", reference=survey.reference)
    return list_body(
        text,
        t("whatsapp.survey.button"),
        rows,
        t("whatsapp.survey.title"),
    )


class WhatsAppDelivery:
    """The `handoff.delivery.Delivery` of WhatsApp conversations."""

    def __init__(self, wa: WhatsAppService) -> None:
        self._wa = wa

    def deliver(self, session: Session, conversation_id: str, message: Outgoing) -> None:
        contact = self._contact(session, conversation_id)
        if contact is None:
            raise DeliveryRefused("whatsapp_no_contact", "handoff.error.whatsapp_no_contact")
        if not contact.window_open(self._wa.clock()):
            raise DeliveryRefused("outside_window", "handoff.error.outside_window")
        if message.survey is not None:
            bodies = [survey_body(message.survey)]
        else:
            bodies = [text_body(part) for part in split_text(to_whatsapp(message.text).strip())]
        drafts = [OutboundDraft(f"{message.key}:{i}", body) for i, body in enumerate(bodies)]
        self._wa.outbox.add(session, contact, drafts, conversation_id=conversation_id)
        # Wake the sender once the rows are visible, not before (it would find nothing and sleep).
        event.listen(session, "after_commit", lambda _: self._wa.notify_outbox(), once=True)

    def team(self, session: Session, conversation_id: str) -> str | None:
        """The team of the business number the citizen wrote to."""
        number = session.scalar(
            select(ContactRow.phone_number_id).where(ContactRow.conversation_id == conversation_id).limit(1)
        )
        return None if number is None else self._wa.number(number).team

    @staticmethod
    def _contact(session: Session, conversation_id: str) -> ContactView | None:
        row = session.scalars(select(ContactRow).where(ContactRow.conversation_id == conversation_id).limit(1)).first()
        return None if row is None else contact_view(row)

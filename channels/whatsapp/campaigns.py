"""Active campaigns: one approved template to a segment of opted-in citizens, only inside a weekly sending window,
at a set pace, with a delivery report (sent, delivered, read, failed) exportable to CSV and XLSX."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.whatsapp.consent import CHANNEL, ConsentChecker
from channels.whatsapp.contacts import contact_view
from channels.whatsapp.models import CampaignRecipientRow, CampaignRow, ContactRow, OutboxRow
from channels.whatsapp.outbox import OutboundDraft, Outbox
from channels.whatsapp.templates import TemplateError, Templates, render
from core.models import utcnow

DEFAULT_TIMEZONE: Final = "America/Sao_Paulo"
STATES: Final = ("draft", "running", "paused", "done", "cancelled")
REPORT_COLUMNS: Final = ("citizen_ref", "recipient_state", "status", "error_code", "error_title", "status_at")


class CampaignError(ValueError):
    """A campaign request breaks a rule; `key` names the pt-BR explanation."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class SendingWindow:
    """ISO weekdays (1 = Monday) and the hours [start, end) in the campaign's time zone."""

    days: tuple[int, ...] = (1, 2, 3, 4, 5)
    start_hour: int = 9
    end_hour: int = 18
    timezone: str = DEFAULT_TIMEZONE

    def validate(self) -> None:
        if not self.days or any(d not in range(1, 8) for d in self.days):
            raise CampaignError("whatsapp.campaign_invalid", reason="dias")
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise CampaignError("whatsapp.campaign_invalid", reason="horário")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CampaignError("whatsapp.campaign_invalid", reason="fuso horário") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return local.isoweekday() in self.days and self.start_hour <= local.hour < self.end_hour


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    template: str
    language: str
    phone_number_id: str
    variables: Sequence[str] = ()
    citizen_refs: Sequence[str] | None = None  # the segment; None: every contact of the number
    active_within_days: int | None = None  # only citizens who wrote in this many days
    window: SendingWindow = field(default_factory=SendingWindow)
    pace_per_min: int = 60


@dataclass(frozen=True, slots=True)
class CampaignReport:
    id: int
    name: str
    status: str
    template: str
    recipients: int
    skipped: int
    pending: int
    sent: int  # reached WhatsApp (accepted, sent, delivered or read)
    delivered: int  # delivered or read
    read: int
    failed: int
    by_status: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "template": self.template,
            "recipients": self.recipients,
            "skipped": self.skipped,
            "pending": self.pending,
            "sent": self.sent,
            "delivered": self.delivered,
            "read": self.read,
            "failed": self.failed,
            "by_status": self.by_status,
        }


class Campaigns:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        outbox: Outbox,
        templates: Templates,
        consent: ConsentChecker,
        *,
        refs: Callable[[str], str] = str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._templates = templates
        self._consent = consent
        self._refs = refs  # a segment's "whatsapp:<phone>" becomes the pseudonymous ref contacts carry
        self._clock = clock

    def create(self, spec: CampaignSpec, *, created_by: str) -> CampaignReport:
        """Create a draft campaign and fix its segment: the number's contacts with an opt-in for the template's
        purpose (the others are listed as skipped, so the report accounts for everyone asked for)."""
        if not spec.name.strip() or len(spec.name) > 255:
            raise CampaignError("whatsapp.campaign_invalid", reason="nome")
        if not 1 <= spec.pace_per_min <= 6000:
            raise CampaignError("whatsapp.campaign_invalid", reason="ritmo")
        spec.window.validate()
        template = self._templates.get(spec.template, spec.language)
        if template is None:
            raise CampaignError("whatsapp.template_unknown", name=spec.template)
        try:
            render(template, spec.variables)
        except TemplateError as exc:
            raise CampaignError(exc.key, **exc.params) from exc
        now = self._clock()
        segment_refs = None if spec.citizen_refs is None else list(dict.fromkeys(map(self._refs, spec.citizen_refs)))
        stmt = select(ContactRow).where(ContactRow.phone_number_id == spec.phone_number_id).order_by(ContactRow.id)
        if segment_refs is not None:
            stmt = stmt.where(ContactRow.citizen_ref.in_(segment_refs))
        if spec.active_within_days is not None:
            stmt = stmt.where(ContactRow.last_inbound_at >= now - timedelta(days=spec.active_within_days))
        with self._sessions.begin() as session:
            contacts = [contact_view(c) for c in session.scalars(stmt)]
            row = CampaignRow(
                name=spec.name.strip(),
                template_id=template.id,
                variables=[str(v) for v in spec.variables],
                phone_number_id=spec.phone_number_id,
                segment={
                    "citizen_refs": segment_refs or None,
                    "active_within_days": spec.active_within_days,
                },
                days=list(spec.window.days),
                start_hour=spec.window.start_hour,
                end_hour=spec.window.end_hour,
                timezone=spec.window.timezone,
                pace_per_min=spec.pace_per_min,
                status="draft",
                created_by=created_by,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            for contact in contacts:
                opted_in = self._consent.is_opted_in(contact.citizen_ref, CHANNEL, template.purpose)
                session.add(
                    CampaignRecipientRow(
                        campaign_id=row.id,
                        contact_id=contact.id,
                        state="pending" if opted_in else "skipped",
                        reason=None if opted_in else "no_opt_in",
                    )
                )
            campaign_id = row.id
        return self.report(campaign_id)

    def set_status(self, campaign_id: int, status: str) -> CampaignReport:
        """start (running), pause (paused) or cancel (cancelled); a finished campaign stays as it is."""
        allowed = {"running": ("draft", "paused"), "paused": ("running",), "cancelled": ("draft", "running", "paused")}
        with self._sessions.begin() as session:
            row = session.get(CampaignRow, campaign_id, with_for_update=True)
            if row is None:
                raise CampaignError("whatsapp.campaign_unknown")
            if row.status not in allowed.get(status, ()):
                raise CampaignError("whatsapp.campaign_state", status=row.status)
            row.status = status
            row.updated_at = self._clock()
        return self.report(campaign_id)

    def tick(self) -> int:
        """Enqueue what each running campaign may send now (window and pace); returns messages enqueued."""
        now = self._clock()
        with self._sessions() as session:
            running = list(session.scalars(select(CampaignRow.id).where(CampaignRow.status == "running")))
        return sum(self._tick_one(campaign_id, now) for campaign_id in running)

    def _tick_one(self, campaign_id: int, now: datetime) -> int:
        with self._sessions.begin() as session:
            campaign = session.get(CampaignRow, campaign_id, with_for_update=True)
            if campaign is None or campaign.status != "running":
                return 0
            window = SendingWindow(tuple(campaign.days), campaign.start_hour, campaign.end_hour, campaign.timezone)
            if not window.contains(now):
                return 0
            allowance = campaign.pace_per_min
            if campaign.last_enqueued_at is not None:
                elapsed_min = (now - campaign.last_enqueued_at).total_seconds() / 60
                allowance = min(campaign.pace_per_min, math.floor(campaign.pace_per_min * elapsed_min))
            if allowance < 1:
                return 0
            template = self._templates.get_by_id(campaign.template_id)
            if template is None or template.status != "APPROVED":
                return 0  # paused at Meta or withdrawn: wait, the report shows the pending rows
            pending = list(
                session.execute(
                    select(CampaignRecipientRow, ContactRow)
                    .join(ContactRow, ContactRow.id == CampaignRecipientRow.contact_id)
                    .where(CampaignRecipientRow.campaign_id == campaign_id, CampaignRecipientRow.state == "pending")
                    .order_by(CampaignRecipientRow.id)
                    .limit(allowance)
                )
            )
            body = render(template, campaign.variables)
            enqueued = 0
            for recipient, contact_row in pending:
                contact = contact_view(contact_row)
                # Consent is asked again now: an opt-out since the campaign was created wins.
                if not self._consent.is_opted_in(contact.citizen_ref, CHANNEL, template.purpose):
                    recipient.state, recipient.reason = "skipped", "opted_out"
                    continue
                draft = OutboundDraft(f"campaign:{campaign_id}:{contact.id}", body, template.purpose)
                recipient.outbox_id = self._outbox.add_once(session, contact, draft, campaign_id=campaign_id)
                recipient.state = "enqueued"
                enqueued += 1
            campaign.last_enqueued_at = now
            campaign.updated_at = now
            left = session.scalar(
                select(func.count())
                .select_from(CampaignRecipientRow)
                .where(CampaignRecipientRow.campaign_id == campaign_id, CampaignRecipientRow.state == "pending")
            )
            if not left:
                campaign.status = "done"
            return enqueued

    def report(self, campaign_id: int) -> CampaignReport:
        with self._sessions() as session:
            campaign = session.get(CampaignRow, campaign_id)
            if campaign is None:
                raise CampaignError("whatsapp.campaign_unknown")
            template = self._templates.get_by_id(campaign.template_id)
            rows = session.execute(
                select(CampaignRecipientRow.state, OutboxRow.status, func.count())
                .outerjoin(OutboxRow, OutboxRow.id == CampaignRecipientRow.outbox_id)
                .where(CampaignRecipientRow.campaign_id == campaign_id)
                .group_by(CampaignRecipientRow.state, OutboxRow.status)
            ).all()
        by_status: dict[str, int] = {}
        recipients = skipped = 0
        for state, status, n in rows:
            recipients += n
            if state == "skipped":
                skipped += n
                key = "skipped"
            elif state == "pending" or status is None:
                key = "pending"
            else:
                key = status
            by_status[key] = by_status.get(key, 0) + n

        def count(*names: str) -> int:
            return sum(by_status.get(name, 0) for name in names)

        return CampaignReport(
            id=campaign_id,
            name=campaign.name,
            status=campaign.status,
            template=template.name if template else "",
            recipients=recipients,
            skipped=skipped,
            pending=count("pending", "queued", "sending"),
            sent=count("accepted", "sent", "delivered", "read"),
            delivered=count("delivered", "read"),
            read=count("read"),
            failed=count("failed"),
            by_status=by_status,
        )

    def all(self) -> list[CampaignReport]:
        with self._sessions() as session:
            ids = list(session.scalars(select(CampaignRow.id).order_by(CampaignRow.id.desc())))
        return [self.report(i) for i in ids]

    def recipient_rows(self, campaign_id: int) -> list[dict[str, Any]]:
        """One row per recipient for the export; identified by citizen_ref only, never by phone number."""
        self.report(campaign_id)  # raises for an unknown campaign
        with self._sessions() as session:
            rows = session.execute(
                select(CampaignRecipientRow, ContactRow.citizen_ref, OutboxRow)
                .join(ContactRow, ContactRow.id == CampaignRecipientRow.contact_id)
                .outerjoin(OutboxRow, OutboxRow.id == CampaignRecipientRow.outbox_id)
                .where(CampaignRecipientRow.campaign_id == campaign_id)
                .order_by(CampaignRecipientRow.id)
            ).all()
            return [
                {
                    "citizen_ref": ref,
                    "recipient_state": r.state if r.state != "skipped" else f"skipped:{r.reason}",
                    "status": o.status if o is not None else "",
                    "error_code": (o.error_code or "") if o is not None else "",
                    "error_title": (o.error_title or "") if o is not None else "",
                    "status_at": o.status_at.isoformat() if o is not None else "",
                }
                for r, ref, o in rows
            ]

    def export_csv(self, campaign_id: int) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(REPORT_COLUMNS))
        writer.writeheader()
        writer.writerows(self.recipient_rows(campaign_id))
        return out.getvalue()

    def export_xlsx(self, campaign_id: int) -> bytes:
        from openpyxl import Workbook

        report = self.report(campaign_id)
        workbook = Workbook()
        summary = workbook.active
        assert summary is not None
        summary.title = "resumo"
        for key in ("name", "status", "template", "recipients", "skipped", "pending", "sent", "delivered", "read"):
            summary.append([key, report.as_dict()[key]])
        summary.append(["failed", report.failed])
        sheet = workbook.create_sheet("destinatarios")
        sheet.append(list(REPORT_COLUMNS))
        for row in self.recipient_rows(campaign_id):
            sheet.append([row[c] for c in REPORT_COLUMNS])
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()

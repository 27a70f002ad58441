"""Staff API for the WhatsApp channel: templates, one-off template sends, campaigns with their delivery
reports (JSON, CSV, XLSX), and delivery failures. Access is declared in core/accounts/permissions.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from channels.whatsapp.campaigns import DEFAULT_TIMEZONE, CampaignError, CampaignSpec, SendingWindow
from channels.whatsapp.service import SendRefused, WhatsAppService
from channels.whatsapp.templates import TemplateError, TemplateSpec
from core.accounts.access import AuthContext, current_auth
from core.audit import AuditEvent
from core.db import RowId
from core.errors import error_body
from core.i18n import t

router = APIRouter(prefix="/api/whatsapp", tags=["whatsapp"])
Caller = Annotated[AuthContext, Depends(current_auth)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def get_whatsapp(request: Request) -> WhatsAppService:
    wa: WhatsAppService | None = request.app.state.services.whatsapp
    if wa is None:
        raise RuntimeError("the WhatsApp channel is not wired into Services")
    return wa


WhatsAppDep = Annotated[WhatsAppService, Depends(get_whatsapp)]


class TemplateIn(BaseModel):
    name: str = Field(max_length=512)
    language: str = "pt_BR"
    category: str = "UTILITY"
    body: str = Field(min_length=1, max_length=1024)
    variables: list[str] = Field(default_factory=list)
    buttons: list[str] = Field(default_factory=list)
    status: str = "APPROVED"


class TemplateSendIn(BaseModel):
    to: str = Field(min_length=3, max_length=160, description="Phone number, business-scoped id or citizen_ref")
    template: str
    language: str = "pt_BR"
    variables: list[str] = Field(default_factory=list)
    phone_number_id: str | None = None


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    template: str
    language: str = "pt_BR"
    phone_number_id: str | None = None
    variables: list[str] = Field(default_factory=list)
    citizen_refs: list[str] | None = Field(default=None, description="The segment; omitted: every contact")
    active_within_days: int | None = Field(default=None, ge=1)
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], description="ISO weekdays, 1 = Monday")
    start_hour: int = Field(default=9, ge=0, le=23)
    end_hour: int = Field(default=18, ge=1, le=24)
    timezone: str = DEFAULT_TIMEZONE
    pace_per_min: int = Field(default=60, ge=1, le=6000)
    start: bool = False


def _refused(exc: TemplateError | CampaignError | SendRefused) -> JSONResponse:
    code = exc.key.removeprefix("whatsapp.")
    return JSONResponse(error_body(code, t(exc.key, **exc.params)), 404 if code.endswith("unknown") else 422)


def _audit(wa: WhatsAppService, caller: AuthContext, action: str, object_id: str, **details: Any) -> None:
    wa.audit.record(
        AuditEvent(
            actor=caller.principal.subject, action=action, object_type="whatsapp", object_id=object_id, details=details
        )
    )


@router.get("/templates", summary="The template register")
def list_templates(wa: WhatsAppDep, _: Caller) -> list[dict[str, Any]]:
    return [tpl.as_dict() for tpl in wa.templates.all()]


@router.post("/templates", status_code=status.HTTP_201_CREATED, summary="Register (or update) a template")
def register_template(body: TemplateIn, wa: WhatsAppDep, caller: Caller) -> Any:
    try:
        tpl = wa.templates.register(TemplateSpec(**body.model_dump()))
    except TemplateError as exc:
        return _refused(exc)
    _audit(wa, caller, "whatsapp.template_register", f"{tpl.name}:{tpl.language}", status=tpl.status)
    return tpl.as_dict()


@router.post("/messages/template", status_code=status.HTTP_202_ACCEPTED, summary="Send a template to a citizen")
def send_template(body: TemplateSendIn, wa: WhatsAppDep, caller: Caller) -> Any:
    try:
        outbox_id = wa.send_template(
            body.to,
            body.template,
            body.language,
            body.variables,
            phone_number_id=body.phone_number_id,
            actor=caller.principal.subject,
        )
    except SendRefused as exc:
        return _refused(exc)
    return {"outbox_id": outbox_id, "status": "queued"}


@router.get("/campaigns", summary="Campaigns with their delivery counts")
def list_campaigns(wa: WhatsAppDep, _: Caller) -> list[dict[str, Any]]:
    return [report.as_dict() for report in wa.campaigns.all()]


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, summary="Create a campaign (and start it)")
def create_campaign(body: CampaignIn, wa: WhatsAppDep, caller: Caller) -> Any:
    try:
        spec = CampaignSpec(
            name=body.name,
            template=body.template,
            language=body.language,
            phone_number_id=body.phone_number_id or wa.default_number(),
            variables=body.variables,
            citizen_refs=body.citizen_refs,
            active_within_days=body.active_within_days,
            window=SendingWindow(tuple(body.days), body.start_hour, body.end_hour, body.timezone),
            pace_per_min=body.pace_per_min,
        )
        report = wa.campaigns.create(spec, created_by=caller.principal.subject)
        _audit(
            wa, caller, "whatsapp.campaign_create", str(report.id), template=body.template, recipients=report.recipients
        )
        if body.start:
            report = wa.campaigns.set_status(report.id, "running")
            _audit(wa, caller, "whatsapp.campaign_running", str(report.id))
            wa.notify_outbox()
    except (CampaignError, SendRefused) as exc:
        return _refused(exc)
    return report.as_dict()


@router.get("/campaigns/{campaign_id}", summary="A campaign's delivery report")
def campaign_report(campaign_id: RowId, wa: WhatsAppDep, _: Caller) -> Any:
    try:
        return wa.campaigns.report(campaign_id).as_dict()
    except CampaignError as exc:
        return _refused(exc)


def _transition(campaign_id: int, new_status: str, wa: WhatsAppService, caller: AuthContext) -> Any:
    try:
        report = wa.campaigns.set_status(campaign_id, new_status)
    except CampaignError as exc:
        return _refused(exc)
    _audit(wa, caller, f"whatsapp.campaign_{new_status}", str(campaign_id))
    wa.notify_outbox()
    return report.as_dict()


@router.post("/campaigns/{campaign_id}/start", summary="Start or resume a campaign")
def start_campaign(campaign_id: RowId, wa: WhatsAppDep, caller: Caller) -> Any:
    return _transition(campaign_id, "running", wa, caller)


@router.post("/campaigns/{campaign_id}/pause", summary="Pause a campaign")
def pause_campaign(campaign_id: RowId, wa: WhatsAppDep, caller: Caller) -> Any:
    return _transition(campaign_id, "paused", wa, caller)


@router.post("/campaigns/{campaign_id}/cancel", summary="Cancel a campaign")
def cancel_campaign(campaign_id: RowId, wa: WhatsAppDep, caller: Caller) -> Any:
    return _transition(campaign_id, "cancelled", wa, caller)


@router.get(
    "/campaigns/{campaign_id}/report.csv",
    summary="The report, one row per recipient, as CSV",
    responses={200: {"content": {"text/csv": {}}, "description": "The report"}},
)
def campaign_csv(campaign_id: RowId, wa: WhatsAppDep, _: Caller) -> Response:
    try:
        content = wa.campaigns.export_csv(campaign_id)
    except CampaignError as exc:
        return _refused(exc)
    headers = {"Content-Disposition": f'attachment; filename="campanha-{campaign_id}.csv"'}
    return Response(content, media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/campaigns/{campaign_id}/report.xlsx",
    summary="The report as an XLSX workbook",
    responses={200: {"content": {XLSX: {}}, "description": "The report"}},
)
def campaign_xlsx(campaign_id: RowId, wa: WhatsAppDep, _: Caller) -> Response:
    try:
        content = wa.campaigns.export_xlsx(campaign_id)
    except CampaignError as exc:
        return _refused(exc)
    headers = {"Content-Disposition": f'attachment; filename="campanha-{campaign_id}.xlsx"'}
    return Response(content, media_type=XLSX, headers=headers)


@router.get("/failures", summary="Messages WhatsApp did not deliver, and webhook items we could not process")
def failures(wa: WhatsAppDep, _: Caller, limit: int = 100) -> dict[str, Any]:
    limit = max(1, min(limit, 1000))
    return {"outbound": wa.outbox.failures(limit), "inbox": wa.inbox.dead(limit)}

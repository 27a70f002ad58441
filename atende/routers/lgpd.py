"""LGPD for staff: data-subject export and erase, the consent register, and the extra personal-data patterns.

Who may call what is declared in core/accounts/permissions.py. Each route writes its own audit record (with
the citizen as subject), so the generic per-request record is skipped (`mark_audited`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from atende.api_errors import ApiError
from atende.deps import CurrentAuth, LgpdDep, SettingsDep
from atende.lgpd.reveal import AuditObject, audit_pii_read
from atende.lgpd.rights import InvalidSubject, checked_subject, render_html
from core.audit_http import client_of, mark_audited
from core.lgpd.consent import ConsentStatus

router = APIRouter(prefix="/api/lgpd", tags=["lgpd"])


class SubjectIn(BaseModel):
    """The citizen: any of their identifiers. In a POST body, never in a URL, so no access log keeps the CPF."""

    citizen_id: str | None = Field(default=None, max_length=64)
    cpf: str | None = Field(default=None, max_length=32)
    citizen_refs: list[str] = Field(default_factory=list, max_length=20)

    def subject(self) -> Any:
        try:
            return checked_subject(self.citizen_id, self.cpf, tuple(ref[:255] for ref in self.citizen_refs))
        except InvalidSubject as exc:
            raise ApiError("invalid_subject", exc.key, 422) from exc


class ExportIn(SubjectIn):
    format: Literal["json", "html"] = "json"


class EraseIn(SubjectIn):
    confirm: Literal[True] = Field(description="must be true: erasing cannot be undone")


class EraseOut(BaseModel):
    subject: str
    rows: dict[str, int]


class ConsentIn(BaseModel):
    citizen_ref: str = Field(min_length=1, max_length=255)
    channel: str = Field(min_length=1, max_length=32)
    purpose: str = Field(min_length=1, max_length=64)
    status: ConsentStatus
    via: str | None = Field(default=None, max_length=120, description='how the citizen said it, e.g. "telefone"')
    at: datetime | None = Field(default=None, description="when the citizen gave it (default: now)")


class PatternIn(BaseModel):
    pattern: str = Field(min_length=1, max_length=500)


@router.post(
    "/export",
    summary="Everything held about a citizen (JSON, or a readable HTML page)",
    responses={200: {"content": {"application/json": {}, "text/html": {}}, "description": "The citizen's data"}},
)
def export(body: ExportIn, request: Request, auth: CurrentAuth, lgpd: LgpdDep, settings: SettingsDep) -> Response:
    ip, user_agent = client_of(request)
    result = lgpd.rights.export(body.subject(), actor=auth.principal.subject, ip=ip, user_agent=user_agent)
    mark_audited(request)
    if body.format == "html":
        page = render_html(result, organization=settings.organization_name, timezone=settings.audit_timezone)
        return HTMLResponse(page, headers={"Content-Disposition": 'attachment; filename="dados-pessoais.html"'})
    return JSONResponse(result.as_json())


@router.post("/erase", response_model=EraseOut, summary="Anonymise a citizen's personal data everywhere")
def erase(body: EraseIn, request: Request, auth: CurrentAuth, lgpd: LgpdDep) -> EraseOut:
    ip, user_agent = client_of(request)
    report = lgpd.rights.erase(body.subject(), actor=auth.principal.subject, ip=ip, user_agent=user_agent)
    mark_audited(request)
    return EraseOut(subject=report.subject_key, rows=report.rows)


@router.get("/consent", summary="A citizen's current consent and its full history")
def consent(
    request: Request,
    auth: CurrentAuth,
    lgpd: LgpdDep,
    citizen_ref: Annotated[str, Query(min_length=1, max_length=255)],
) -> dict[str, Any]:
    ip, user_agent = client_of(request)
    audit_pii_read(
        lgpd.audit,
        auth.principal,
        AuditObject("consent", citizen_ref, subject=citizen_ref),
        ["consent"],
        ip=ip,
        user_agent=user_agent,
    )
    return {
        "citizen_ref": citizen_ref,
        "current": [e.as_dict() for e in lgpd.consent.current(citizen_ref)],
        "history": [e.as_dict() for e in lgpd.consent.history(citizen_ref)],
    }


@router.post("/consent", status_code=status.HTTP_201_CREATED, summary="Record an opt-in or opt-out given to staff")
def record_consent(body: ConsentIn, request: Request, auth: CurrentAuth, lgpd: LgpdDep) -> dict[str, Any]:
    ip, user_agent = client_of(request)
    actor = auth.principal.subject
    source = f"staff:{actor}" + (f" ({body.via})" if body.via else "")
    try:
        entry = lgpd.consent.record(
            body.citizen_ref,
            body.channel,
            body.purpose,
            body.status,
            source,
            actor=actor,
            ip=ip,
            user_agent=user_agent,
            at=body.at,
        )
    except ValueError as exc:
        raise ApiError("invalid_consent", "error.lgpd.invalid_consent", 422) from exc
    mark_audited(request)
    return entry.as_dict()


KindPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Z][A-Z0-9_]*$")]


@router.get("/pii-patterns", summary="The extra personal-data kinds masked with the built-in ones")
def list_patterns(lgpd: LgpdDep) -> dict[str, Any]:
    return {"patterns": [view.as_dict() for view in lgpd.pii_patterns.list()]}


@router.put("/pii-patterns/{kind}", summary="Add or replace an extra personal-data kind")
def put_pattern(kind: KindPath, body: PatternIn, request: Request, auth: CurrentAuth, lgpd: LgpdDep) -> dict[str, Any]:
    ip, user_agent = client_of(request)
    try:
        lgpd.pii_patterns.put(kind, body.pattern, actor=auth.principal.subject, ip=ip, user_agent=user_agent)
    except ValueError as exc:
        raise ApiError("invalid_pattern", "error.lgpd.invalid_pattern", 422, reason=str(exc)) from exc
    mark_audited(request)
    return {"kind": kind, "pattern": body.pattern}


@router.delete("/pii-patterns/{kind}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an extra kind")
def delete_pattern(kind: KindPath, request: Request, auth: CurrentAuth, lgpd: LgpdDep) -> Response:
    ip, user_agent = client_of(request)
    if not lgpd.pii_patterns.remove(kind, actor=auth.principal.subject, ip=ip, user_agent=user_agent):
        raise ApiError("pattern_not_found", "error.lgpd.pattern_not_found", 404)
    mark_audited(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

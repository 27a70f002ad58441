"""The audit trail for auditors: search, verify the hash chain, export to CSV or XLSX."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from atende.api_errors import ApiError
from atende.deps import AuditLogDep, CurrentAuth
from core.audit import AuditEvent, AuditQuery, iter_csv, write_xlsx
from core.audit_http import client_of, mark_audited
from core.db import SequenceNumber

router = APIRouter(prefix="/api/audit", tags=["audit"])


def _when(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ApiError("invalid_query", "error.audit.invalid_query", 422) from exc
    # A date without a zone is read in UTC, as the CLI does.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class AuditFilters(BaseModel):
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    subject: str | None = None
    since: str | None = None  # ISO date or datetime, inclusive
    until: str | None = None  # ISO date or datetime, exclusive

    def query(self) -> AuditQuery:
        return AuditQuery(
            actor=self.actor or None,
            action=self.action or None,
            object_type=self.object_type or None,
            object_id=self.object_id or None,
            subject=self.subject or None,
            since=_when(self.since),
            until=_when(self.until),
        )


FiltersDep = Annotated[AuditFilters, Depends()]


class AuditPage(BaseModel):
    items: list[dict[str, Any]]
    next_before: int | None


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    first_broken: int | None
    reason: str


@router.get("/events", response_model=AuditPage, summary="Search the audit trail, newest first")
def search(
    audit: AuditLogDep,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[SequenceNumber | None, Query(description="sequence to continue from (exclusive)")] = None,
) -> AuditPage:
    records = audit.search(filters.query(), limit=limit, before=before)
    return AuditPage(
        items=[r.as_dict(audit.timezone) for r in records],
        next_before=records[-1].sequence if len(records) == limit else None,
    )


@router.get("/verify", response_model=VerifyOut, summary="Check the hash chain from the first record")
def verify(audit: AuditLogDep) -> VerifyOut:
    result = audit.verify()
    return VerifyOut(**{name: getattr(result, name) for name in VerifyOut.model_fields})


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/export",
    summary="Export matching records as CSV or XLSX (times in America/Sao_Paulo)",
    responses={200: {"content": {"text/csv": {}, _XLSX: {}}, "description": "The records, as a file"}},
)
def export(
    request: Request,
    audit: AuditLogDep,
    auth: CurrentAuth,
    filters: FiltersDep,
    fmt: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
) -> Any:
    query = filters.query()
    ip, user_agent = client_of(request)
    audit.record(
        AuditEvent(
            auth.principal.subject,
            "audit.export",
            "audit_log",
            None,
            ip,
            user_agent,
            details={"format": fmt, **filters.model_dump(exclude_none=True)},
        )
    )
    mark_audited(request)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        return StreamingResponse(
            iter_csv(audit.iter_records(query), zone=audit.timezone),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="auditoria-{stamp}.csv"'},
        )
    # openpyxl needs a seekable file; a temporary one keeps big exports out of memory.
    with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as out:
        write_xlsx(audit.iter_records(query), out, zone=audit.timezone)
    return FileResponse(
        out.name,
        media_type=_XLSX,
        filename=f"auditoria-{stamp}.xlsx",
        background=BackgroundTask(_remove, out.name),
    )


def _remove(path: str) -> None:
    os.unlink(path)

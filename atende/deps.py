"""FastAPI dependencies, as Annotated aliases so routes declare what they need in one word."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from atende.lgpd.wiring import Lgpd
from atende.services import Services
from core.accounts.access import AuthContext, current_auth, current_staff, require_permission
from core.accounts.service import Accounts, StaffSession
from core.audit import AuditLog
from core.settings import Settings
from handoff.saved_replies import SavedReplies
from handoff.service import HandoffService
from rag.index import KnowledgeIndex


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_index(request: Request) -> KnowledgeIndex:
    return get_services(request).index


def get_app_settings(request: Request) -> Settings:
    return get_services(request).settings


ServicesDep = Annotated[Services, Depends(get_services)]
IndexDep = Annotated[KnowledgeIndex, Depends(get_index)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_accounts(request: Request) -> Accounts:
    return get_services(request).accounts


# Staff access (atende/accounts): every non-public route is already checked against the permission table;
# these give a route its caller, or add a check on a further action.
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
CurrentAuth = Annotated[AuthContext, Depends(current_auth)]  # a staff session or a bearer token
CurrentStaff = Annotated[StaffSession, Depends(current_staff)]  # a staff session only


def RequirePermission(action: str) -> Any:
    """`principal: Annotated[Principal, RequirePermission("citizen.pii.read")]`: 403 unless the caller may."""
    return Depends(require_permission(action))


# Audit trail and LGPD
def get_audit_log(request: Request) -> AuditLog:
    audit = get_services(request).audit
    if not isinstance(audit, AuditLog):
        raise RuntimeError("the audit routes need the persistent AuditLog (build_services wires it)")
    return audit


def get_lgpd(request: Request) -> Lgpd:
    lgpd = get_services(request).lgpd
    if lgpd is None:
        raise RuntimeError("the LGPD routes need services.lgpd (build_services wires it)")
    return lgpd


AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]
LgpdDep = Annotated[Lgpd, Depends(get_lgpd)]


# The agents' console
def get_saved_replies(request: Request) -> SavedReplies:
    replies = get_services(request).saved_replies
    if replies is None:
        raise RuntimeError("the saved-reply routes need services.saved_replies (build_services wires it)")
    return replies


SavedRepliesDep = Annotated[SavedReplies, Depends(get_saved_replies)]


# Human handoff
def require_handoff(services: Services) -> HandoffService:
    if services.handoff is None:
        raise RuntimeError("the console needs services.handoff (build_services wires it)")
    return services.handoff


def get_handoff(request: Request) -> HandoffService:
    return require_handoff(get_services(request))


HandoffDep = Annotated[HandoffService, Depends(get_handoff)]

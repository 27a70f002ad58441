"""The copilot's tool actions, runnable from the console: open a protocol, issue a debt's second copy, and
identify the citizen with the CPF and birth date they told the agent.

Each action has a draft (GET: what would be done, prefilled, nothing changes) and a run (POST: done through the same
domain services as the MCP tools, with the agent as actor, recorded on the conversation and in the audit trail).
A run answers with a pt-BR text for the reply box; nothing reaches the citizen until the agent sends it.
verify_identity has no draft of its own: its form is the second-copy draft's while nobody is identified.
Who may call what is declared in core/accounts/permissions.py ("protocol.write", "payment.read",
"citizen.write"); on top of it only the agent serving the conversation, or a supervisor of its setor, may act on it
(atende/console/access.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from assistant.agent_aids.summary import summarize
from assistant.routing import route_message
from assistant.tools import render
from assistant.tools.catalog import services_in
from atende.api_errors import ApiError
from atende.console.access import require_access
from atende.deps import CurrentAuth, ServicesDep, require_handoff
from atende.services import Services
from core.accounts.access import AuthContext
from core.audit import AuditEvent
from core.audit_http import client_of, mark_audited
from core.i18n import t
from core.privacy import mask
from core.store import ConversationNotFound, ConversationView, MessageView
from domain.catalog import TEAMS
from domain.contacts import ContactProtocols
from domain.debts import amount_text
from domain.errors import DomainError
from domain.models import ServiceEntry
from domain.protocols import MAX_DESCRIPTION
from domain.wiring import Domain

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/console/conversations/{conversation_id}/actions", tags=["console: actions"])

EVENT_KIND: Final = "console_action"
# How a domain refusal reads over HTTP; its pt-BR message comes from the domain's own catalogue key.
_STATUS: Final[dict[str, int]] = {
    "invalid_argument": 422,
    "identity_mismatch": 422,
    "not_found": 404,
    "conflict": 409,
    "forbidden": 403,
    "rate_limited": 429,
    "unavailable": 503,
}


class OpenProtocolIn(BaseModel):
    """Emptiness and length are the protocol book's to check, so the refusal is its pt-BR message."""

    model_config = ConfigDict(extra="forbid")
    service: str = Field(max_length=255)
    description: str = Field(max_length=MAX_DESCRIPTION * 2)
    address: str | None = Field(default=None, max_length=500)


class SecondCopyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    debt_id: str = Field(max_length=32)


class VerifyIdentityIn(BaseModel):
    """As the citizen wrote them; the verifier normalizes and validates both."""

    model_config = ConfigDict(extra="forbid")
    cpf: str = Field(max_length=32)
    birth_date: str = Field(max_length=32)


@dataclass(frozen=True)
class Target:
    """The conversation an action works on, and who its citizen is (None: nobody identified)."""

    conversation: ConversationView
    citizen_id: int | None
    verified: bool  # the conversation's identity verification is still valid now


def _domain(services: Services) -> Domain:
    if services.domain is None:
        raise RuntimeError("console actions need services.domain (build_services wires it)")
    return services.domain


def _refused(exc: DomainError) -> ApiError:
    return ApiError(exc.code, exc.key, _STATUS.get(exc.code, 422), **exc.params)


def _target(services: Services, auth: AuthContext, conversation_id: str) -> Target:
    """The conversation, if it exists and the caller serves it (an agent) or supervises its setor."""
    require_access(require_handoff(services), auth.principal, conversation_id, "act")
    conversation = services.store.get_conversation(conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    domain = _domain(services)
    # The same rule that links a closed service's protocol to the citizen (decision 0033): the conversation's
    # `citizen:<id>` ref (set by a successful verification in it), else a verification still valid.
    with domain.sessions() as session:
        citizen_id = ContactProtocols(domain.protocols, domain.clock).citizen_of(session, conversation_id)
    verified = domain.verifier.verified_citizen(conversation_id)
    return Target(conversation, citizen_id, verified is not None and verified == citizen_id)


def _audit(
    services: Services,
    request: Request,
    auth: AuthContext,
    target: Target,
    action: str,
    object_type: str,
    object_id: str | None,
    **details: object,
) -> None:
    """One record under the citizen's subject, shaped like the MCP tools' staff records, plus where from."""
    ip, user_agent = client_of(request)
    services.audit.record(
        AuditEvent(
            actor=auth.principal.subject,
            action=action,
            object_type=object_type,
            object_id=object_id,
            ip=ip,
            user_agent=user_agent,
            details={"conversation_id": target.conversation.id, "via": "console", **details},
            subject=None if target.citizen_id is None else f"citizen:{target.citizen_id}",
        )
    )


def _citizen_texts(messages: Sequence[MessageView]) -> list[str]:
    """What the citizen wrote about their matter, newest first (requests for a person left out)."""
    return [m.text for m in reversed(messages) if m.role == "user" and route_message(m.text).route != "human"]


def _best_service(messages: Sequence[MessageView], codes: set[str]) -> str | None:
    """The catalogue service the citizen's latest matter names, with the words the assistant's tools use."""
    for text in _citizen_texts(messages):
        for code in services_in(text, "protocol"):
            if code in codes:
                return code
    return None


def _prefilled_description(summary: dict[str, Any]) -> str:
    """The citizen's matter from the handoff summary (masked), the pending request last."""
    lines: list[str] = list(summary.get("reason") or [])
    pending = summary.get("pending")
    if pending and pending not in lines:
        lines.append(pending)
    return "\n".join(lines)[:MAX_DESCRIPTION]


def _catalogue(domain: Domain) -> list[ServiceEntry]:
    """The services protocol_open accepts: the active protocol entries of the catalogue."""
    with domain.sessions() as session:
        return list(
            session.scalars(
                select(ServiceEntry)
                .where(ServiceEntry.kind == "protocol", ServiceEntry.active.is_(True))
                .order_by(ServiceEntry.name)
            ).all()
        )


def _event(services: Services, target: Target, payload: dict[str, Any]) -> None:
    try:
        services.store.add_event(target.conversation.id, EVENT_KIND, payload)
    except Exception:
        # The action is done and audited; losing its mark on the conversation must at least be loud.
        log.exception("could not record the console action on conversation %s", target.conversation.id)


# --- open a protocol --------------------------------------------------------------------------------------


@router.get("/open_protocol", summary="Draft of a protocol for this conversation (nothing is created)")
def open_protocol_draft(conversation_id: str, services: ServicesDep, auth: CurrentAuth) -> dict[str, Any]:
    target = _target(services, auth, conversation_id)
    entries = _catalogue(_domain(services))
    messages = services.store.list_messages(conversation_id)
    anonymous = target.citizen_id is None
    return {
        "action": "open_protocol",
        "services": [
            {
                "code": e.code,
                "name": e.name,
                "team": e.team,
                "team_name": TEAMS.get(e.team, e.team),
                "sla_business_days": e.sla_business_days,
            }
            for e in entries
        ],
        "service": _best_service(messages, {e.code for e in entries}),
        "description": _prefilled_description(summarize(messages)),
        "address": "",
        "anonymous": anonymous,
        "notice": t("console.actions.protocol.anonymous" if anonymous else "console.actions.protocol.for_citizen"),
    }


@router.post("/open_protocol", summary="Open the protocol; answers with its number and a reply to edit (not sent)")
def open_protocol(
    conversation_id: str, body: OpenProtocolIn, request: Request, services: ServicesDep, auth: CurrentAuth
) -> dict[str, Any]:
    target = _target(services, auth, conversation_id)
    domain = _domain(services)
    anonymous = target.citizen_id is None
    try:
        view = domain.protocols.open(
            service=body.service,
            description=body.description,
            address=body.address,
            citizen_id=target.citizen_id,
            anonymous=anonymous,
            actor=auth.principal.subject,
            channel=target.conversation.channel,
        )
    except DomainError as exc:
        log.info("console open_protocol on %s refused: %s", conversation_id, exc.code)
        raise _refused(exc) from exc
    p = view.protocol
    _audit(services, request, auth, target, "protocol.create", "protocol", p.number, citizen_id=target.citizen_id)
    mark_audited(request)
    _event(services, target, {"action": "open_protocol", "agent": auth.principal.subject, "protocol": p.number})
    facts = {"number": view.reference, "service": view.service_name, "team": TEAMS.get(p.team, p.team)}
    text = t("console.actions.protocol.reply", **facts, due=render.day(p.due_date.isoformat()))
    if anonymous:
        text += " " + t("console.actions.protocol.reply_anonymous")
    return {
        "number": p.number,
        "service": p.service_code,
        "service_name": view.service_name,
        "team": p.team,
        "due_date": p.due_date.isoformat(),
        "anonymous": p.anonymous,
        "text": text,
    }


# --- second copy of a debt --------------------------------------------------------------------------------


@router.get("/second_copy", summary="The citizen's unpaid debts to choose from, once the citizen is identified")
def second_copy_draft(
    conversation_id: str, request: Request, services: ServicesDep, auth: CurrentAuth
) -> dict[str, Any]:
    target = _target(services, auth, conversation_id)
    if target.citizen_id is None:
        return {
            "action": "second_copy",
            "identified": False,
            "debts": [],
            "detail": t("console.actions.identify_first"),
        }
    debts = render.unpaid(_domain(services).debts.list_for(target.citizen_id))
    _audit(services, request, auth, target, "debt.list", "citizen", str(target.citizen_id), count=len(debts))
    return {
        "action": "second_copy",
        "identified": True,
        "verified": target.verified,
        "debts": [
            {
                "debt_id": d["debt_id"],
                "kind": d["kind"],
                "reference": mask(d["reference"]),
                "description": mask(d["description"]),
                "amount": d["amount"],
                "amount_text": render.money(d["amount"]),
                "due_date": d["due_date"],
                "due_text": render.day(d["due_date"]),
                "status": d["status"],
            }
            for d in debts
        ],
        "detail": None if debts else t("action.debts.none"),
    }


@router.post("/second_copy", summary="Payment codes of one debt and a reply to edit (not sent)")
def second_copy(
    conversation_id: str, body: SecondCopyIn, request: Request, services: ServicesDep, auth: CurrentAuth
) -> dict[str, Any]:
    target = _target(services, auth, conversation_id)
    if target.citizen_id is None:
        raise ApiError("not_identified", "console.actions.identify_first", 422)
    domain = _domain(services)
    try:
        debt = domain.debts.get(body.debt_id)
        if debt.citizen_id != target.citizen_id:
            raise DomainError("identity_mismatch", "tools.error.not_yours_debt")
        copy = domain.debts.second_copy(debt)
    except DomainError as exc:
        log.info("console second_copy on %s refused: %s", conversation_id, exc.code)
        raise _refused(exc) from exc
    _audit(services, request, auth, target, "debt.second_copy", "debt", str(debt.id), citizen_id=debt.citizen_id)
    mark_audited(request)
    _event(services, target, {"action": "second_copy", "agent": auth.principal.subject, "debt_id": str(debt.id)})
    data = {
        "debt_id": copy.debt_id,
        "amount": amount_text(int(copy.amount * 100)),
        "due_date": copy.due_date.isoformat(),
        "pix_copia_e_cola": copy.pix_copia_e_cola,
        "boleto_linha_digitavel": copy.boleto_linha_digitavel,
    }
    return {**data, "text": render.second_copy(data, {"reference": debt.reference})}


# --- identify the citizen ---------------------------------------------------------------------------------


@router.post("/verify_identity", summary="Verify the citizen with the CPF and birth date they told the agent")
def verify_identity(
    conversation_id: str, body: VerifyIdentityIn, request: Request, services: ServicesDep, auth: CurrentAuth
) -> dict[str, Any]:
    """The verification citizen_verify runs (same attempt limits, same `citizen.verify` record), the agent as actor:
    on success the conversation is identified as if the citizen had verified with the assistant."""
    target = _target(services, auth, conversation_id)
    try:
        outcome = _domain(services).verifier.verify(
            conversation_id, body.cpf, body.birth_date, actor=auth.principal.subject
        )
    except DomainError as exc:
        log.info("console verify_identity on %s refused: %s", conversation_id, exc.code)
        raise _refused(exc) from exc
    verified = Target(target.conversation, outcome.citizen_id, True) if outcome.verified else target
    # The CPF stays out: the verifier's own record holds it masked.
    _audit(
        services,
        request,
        auth,
        verified,
        "console.verify_identity",
        "citizen",
        None if outcome.citizen_id is None else str(outcome.citizen_id),
        outcome="verified" if outcome.verified else "mismatch",
    )
    mark_audited(request)
    _event(
        services,
        target,
        {"action": "verify_identity", "agent": auth.principal.subject, "verified": outcome.verified},
    )
    if not outcome.verified:
        log.info("console verify_identity on %s: data did not match", conversation_id)
        raise ApiError("identity_mismatch", "console.actions.verify.mismatch", 422, left=outcome.attempts_left)
    name = outcome.first_name
    return {
        "verified": True,
        "first_name": name,
        "attempts_left": outcome.attempts_left,
        "detail": t("console.actions.verify.done"),
        "text": t("action.verify.ok_named", name=name) if name else t("action.verify.ok"),
    }

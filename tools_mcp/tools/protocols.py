"""The protocol tools: open a service request, follow it, comment on it, list them, move one along its workflow."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from domain.access import Caller, Mode
from domain.errors import DomainError
from domain.models import ProtocolComment
from domain.protocols import code_opens, local_iso, normalize_number, owner_status, parse_reference, public_status
from tools_mcp.tools.base import (
    READ_ONLY,
    WRITE,
    OptionalCpf,
    Owned,
    Registration,
    ToolContext,
    ToolDeps,
    act_on_owned,
    run,
)


class ProtocolOpenResult(BaseModel):
    number: str = Field(description="Protocol number AAAA-NNNNNN (número do protocolo)")
    reference: str = Field(
        description="What the citizen keeps to follow the protocol: the number with its access code, "
        "AAAA-NNNNNN-XXXX (give it to them exactly)"
    )
    status: str
    service: str
    service_name: str
    team: str
    due_date: str = Field(description="SLA due date AAAA-MM-DD (prazo, in business days)")
    anonymous: bool


class HistoryEntry(BaseModel):
    status: str
    at: str
    note: str | None


class CommentEntry(BaseModel):
    comment_id: str
    author: str = Field(description="citizen, staff, integration or system")
    text: str
    created_at: str


class ProtocolStatusResult(BaseModel):
    number: str
    status: str = Field(description="aberto, em_analise, encaminhado, concluido or cancelado")
    service: str
    service_name: str
    team: str
    opened_at: str
    due_date: str
    updated_at: str
    anonymous: bool
    history: list[HistoryEntry]
    description: str | None = Field(default=None, description="Only for the protocol's owner or staff")
    address: str | None = Field(default=None, description="Only for the protocol's owner or staff")
    comments: list[CommentEntry] | None = Field(default=None, description="Only for the protocol's owner or staff")


class ProtocolCommentResult(BaseModel):
    number: str
    comment_id: str
    created_at: str


class ProtocolSummary(BaseModel):
    number: str
    status: str
    service: str
    service_name: str
    opened_at: str
    due_date: str


class ProtocolListResult(BaseModel):
    protocols: list[ProtocolSummary]


async def protocol_open(
    ctx: ToolContext,
    service: Annotated[
        str,
        Field(
            description="Service code or name, e.g. iluminacao_publica, tapa_buraco, coleta_lixo, poda_arvore, "
            "iptu_revisao, alvara, saude_agendamento, ouvidoria"
        ),
    ],
    description: Annotated[str, Field(description="What the citizen reports, in their words (relato)")],
    address: Annotated[str | None, Field(description="Street address or reference point (endereço)")] = None,
    anonymous: Annotated[
        bool, Field(description="Open without linking the citizen (protocolo anônimo); no verification needed")
    ] = False,
    cpf: OptionalCpf = None,
) -> Annotated[CallToolResult, ProtocolOpenResult]:
    """Opens a protocol (service request) and returns its number, team and SLA due date.

    A protocol in the citizen's name needs a verified conversation; an anonymous one does not, but its
    owner cannot follow its details or comment on it later.
    """

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        domain, access = deps.domain, deps.access
        citizen_id: int | None = None
        if anonymous:
            mode = access.mode(caller, "protocols:write")
        else:
            subject = access.subject(caller, "protocols:write", cpf)
            citizen_id, mode = subject.citizen_id, subject.mode
        quota = caller.conversation_id if mode == "conversation" else None
        if quota is not None:
            domain.protocol_quota.take(quota)
        try:
            view = domain.protocols.open(
                service=service,
                description=description,
                address=address,
                citizen_id=citizen_id,
                anonymous=anonymous,
                actor=caller.actor,
                channel="mcp",
            )
        except DomainError:
            if quota is not None:
                domain.protocol_quota.give_back(quota)
            raise
        p = view.protocol
        if citizen_id is not None:
            access.record(caller, "protocol.create", "protocol", p.number, citizen_id=citizen_id)
        return {
            "number": p.number,
            "reference": view.reference,
            "status": p.status,
            "service": p.service_code,
            "service_name": view.service_name,
            "team": p.team,
            "due_date": p.due_date.isoformat(),
            "anonymous": p.anonymous,
        }

    return await run(ctx, "protocol_open", work, ProtocolOpenResult)


async def protocol_status(
    ctx: ToolContext,
    number: Annotated[
        str,
        Field(
            description="Protocol reference AAAA-NNNNNN-XXXX as given at opening (number and access code), "
            "e.g. 2026-000123-K7Q9; the bare number AAAA-NNNNNN is enough for its verified owner and staff"
        ),
    ],
) -> Annotated[CallToolResult, ProtocolStatusResult]:
    """Status, team, due date and history of a protocol.

    Whoever holds the reference (number and access code) sees the status; the description, address and
    comments only go to the protocol's verified owner or to staff with protocols:read and citizens:pii. A
    number alone, or a wrong code, is not_found: sequential numbers must not let anyone read other people's
    protocols.
    """

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        domain, access = deps.domain, deps.access
        mode = access.mode(caller, "protocols:read")
        plain, code = parse_reference(number)
        try:
            view = domain.protocols.view(plain)
        except DomainError as exc:
            if mode == "staff" or exc.code != "not_found":
                raise
            # The same answer as for a wrong code: probing numbers tells nothing.
            raise DomainError("not_found", "tools.error.protocol_access", number=plain) from exc
        owner = view.protocol.citizen_id
        staff_sees = mode == "staff" and access.sees_pii(caller)
        if staff_sees or (owner is not None and access.verified_citizen(caller) == owner):
            access.record(caller, "protocol.read", "protocol", view.protocol.number, citizen_id=owner)
            return owner_status(view, domain.clock)
        if mode == "staff" or code_opens(view.protocol, code):
            return public_status(view, domain.clock)
        access.deny(caller, "protocol_code", scope="protocols:read", object_type="protocol", object_id=plain)
        raise DomainError("not_found", "tools.error.protocol_access", number=plain)

    return await run(ctx, "protocol_status", work, ProtocolStatusResult)


async def protocol_add_comment(
    ctx: ToolContext,
    number: Annotated[str, Field(description="Protocol number AAAA-NNNNNN")],
    text: Annotated[str, Field(description="The comment or new information (complemento)")],
) -> Annotated[CallToolResult, ProtocolCommentResult]:
    """Adds a comment to one of the verified citizen's open protocols (staff: any, with protocols:write)."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        protocols = deps.domain.protocols
        owner = protocols.owner_of(number)

        def comment(mode: Mode) -> ProtocolComment:
            author = f"citizen:{owner}" if mode == "conversation" else caller.principal.subject
            return protocols.add_comment(number, text, author=author)

        added = act_on_owned(
            deps,
            caller,
            "protocols:write",
            Owned("protocol", number, owner),
            comment,
            audit="protocol.comment",
            audited_id=lambda _: normalize_number(number),
        )
        return {
            "number": normalize_number(number),
            "comment_id": str(added.id),
            "created_at": local_iso(deps.domain.clock, added.created_at),
        }

    return await run(ctx, "protocol_add_comment", work, ProtocolCommentResult)


async def protocol_list(
    ctx: ToolContext,
    status: Annotated[
        Literal["aberto", "em_analise", "encaminhado", "concluido", "cancelado"] | None,
        Field(description="Only protocols in this status"),
    ] = None,
    cpf: OptionalCpf = None,
) -> Annotated[CallToolResult, ProtocolListResult]:
    """The verified citizen's protocols, newest first."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        domain, access = deps.domain, deps.access
        subject = access.subject(caller, "protocols:read", cpf)
        rows = domain.protocols.list_for(subject.citizen_id, status)
        access.record(caller, "protocol.list", "citizen", str(subject.citizen_id), count=len(rows))
        return {
            "protocols": [
                {
                    "number": p.number,
                    "status": p.status,
                    "service": p.service_code,
                    "service_name": name,
                    "opened_at": local_iso(domain.clock, p.opened_at),
                    "due_date": p.due_date.isoformat(),
                }
                for p, name in rows
            ]
        }

    return await run(ctx, "protocol_list", work, ProtocolListResult)


async def protocol_update_status(
    ctx: ToolContext,
    number: Annotated[str, Field(description="Protocol number AAAA-NNNNNN")],
    status: Annotated[
        Literal["em_analise", "encaminhado", "concluido", "cancelado"],
        Field(description="New status; the workflow is aberto → em_analise → encaminhado → concluido"),
    ],
    note: Annotated[str | None, Field(description="Note recorded in the history (visible to the owner)")] = None,
) -> Annotated[CallToolResult, ProtocolStatusResult]:
    """Moves a protocol along its workflow. Staff and integrations with protocols:write only."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        domain, access = deps.domain, deps.access
        if "protocols:write" not in caller.principal.scopes:
            access.deny(caller, "forbidden", scope="protocols:write", object_type="protocol", object_id=number)
            raise DomainError("forbidden")
        view = domain.protocols.transition(number, status, actor=caller.principal.subject, note=note)
        access.record(
            caller,
            "protocol.update",
            "protocol",
            view.protocol.number,
            status=status,
            citizen_id=view.protocol.citizen_id,
        )
        # The description, address and comments are the citizen's own words: citizens:pii only.
        return owner_status(view, domain.clock) if access.sees_pii(caller) else public_status(view, domain.clock)

    return await run(ctx, "protocol_update_status", work, ProtocolStatusResult)


TOOLS: tuple[Registration, ...] = (
    (protocol_open, WRITE),
    (protocol_status, READ_ONLY),
    (protocol_add_comment, WRITE),
    (protocol_list, READ_ONLY),
    (protocol_update_status, WRITE),
)

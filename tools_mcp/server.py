"""The MCP server: the domain's operations as typed, annotated tools, and knowledge articles as resources.

Every tool answers with structured content. A refusal is a tool error whose payload is
`{"error": "<code>", "message": "<pt-BR text for the citizen>"}` (codes in `tools_mcp.errors`).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.exc import OperationalError

from atende.conversation_keys import PROOF_META_KEY, ConversationProof
from atende.principals import Principal, TokenVerifier
from tools_mcp.access import ASSISTANT_PRINCIPAL, Caller
from tools_mcp.auth import SDKTokenVerifier, principal_from_access_token
from tools_mcp.catalog import DEFAULT_TEAM, TEAMS, normalize_key
from tools_mcp.citizens import citizen_profile
from tools_mcp.dates import parse_date
from tools_mcp.debts import amount_text
from tools_mcp.domain import Domain
from tools_mcp.errors import DomainError
from tools_mcp.protocols import code_opens, local_iso, normalize_number, owner_status, parse_reference, public_status

log = logging.getLogger(__name__)

CONVERSATION_META_KEY = "atende/conversation_id"
_Fn = TypeVar("_Fn", bound=Callable[..., Any])

INSTRUCTIONS = (
    "Citizen-service tools of a Brazilian municipality. Personal data (citizen, protocols, debts, appointments) "
    "is only available after citizen_verify succeeds in the same conversation. Errors carry a pt-BR message "
    "that can be shown to the citizen."
)


def _as_text(value: Any) -> Any:
    # Models sometimes send ids as numbers; the schema still says string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_as_text)]
OptionalCpf = Annotated[
    str | None,
    Field(
        description="CPF (11 digits, with or without dots and dash, e.g. 123.456.789-09). "
        "Staff/integrations: the citizen to act on. In a conversation: optional, must be the verified citizen's."
    ),
]


# Structured results (their JSON schemas are the tools' output schemas).


class CitizenLookupResult(BaseModel):
    citizen_id: str
    name: str
    cpf_masked: str = Field(description="Masked CPF, e.g. ***.456.789-**")
    birth_date_masked: str | None = Field(description="Birth year only, e.g. **/**/1985")
    phone_masked: str | None
    email_masked: str | None
    verified: bool = Field(description="Whether this conversation verified this citizen (citizen_verify)")


class CitizenVerifyResult(BaseModel):
    verified: bool
    first_name: str | None = Field(description="First name, to greet the citizen (only when verified)")
    attempts_left: int = Field(description="Attempts left before verification is blocked for a while")


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


class DebtEntry(BaseModel):
    debt_id: str
    kind: Literal["IPTU", "taxa", "multa"]
    reference: str
    description: str
    amount: str = Field(description='Amount in reais with two decimals, e.g. "123.45"')
    due_date: str
    status: Literal["aberto", "vencido", "pago"]


class DebtListResult(BaseModel):
    debts: list[DebtEntry]


class SecondCopyResult(BaseModel):
    debt_id: str
    amount: str
    due_date: str
    pix_copia_e_cola: str = Field(description="Pix BR Code to paste in a bank app (Pix copia e cola)")
    boleto_linha_digitavel: str = Field(description="47-digit boleto typed line (linha digitável)")


class SlotEntry(BaseModel):
    slot_id: str
    service: str
    starts_at: str = Field(description="Local date and time, ISO 8601 with offset")
    location: str


class SlotListResult(BaseModel):
    slots: list[SlotEntry]


class AppointmentResult(BaseModel):
    appointment_id: str
    service: str
    service_name: str
    starts_at: str
    location: str


class AppointmentRescheduleResult(AppointmentResult):
    previous_appointment_id: str


class AppointmentCancelResult(BaseModel):
    appointment_id: str
    status: Literal["cancelado"]


class AppointmentEntry(AppointmentResult):
    status: Literal["agendado", "cancelado"]


class AppointmentListResult(BaseModel):
    appointments: list[AppointmentEntry]


class HandoffResult(BaseModel):
    handoff: bool
    team: str
    queue_position: int | None


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
READ_ONLY_IDEMPOTENT = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
WRITE_IDEMPOTENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def _ok(data: dict[str, Any]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data, ensure_ascii=False))], structured_content=data
    )


def _error(payload: dict[str, str]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
        is_error=True,
    )


def build_mcp_server(
    domain: Domain,
    *,
    local_principal: Principal = ASSISTANT_PRINCIPAL,
    token_verifier: TokenVerifier | None = None,
    conversation_proof: ConversationProof | None = None,
    base_url: str = "http://127.0.0.1:8000",
    name: str = "atende",
) -> MCPServer:
    """The tools over `domain`.

    In-process and stdio callers are `local_principal` (by default the assistant, which may only act for the
    conversation in `_meta`); HTTP callers are whoever their bearer token names through `token_verifier`, and
    act for the conversation in `_meta` only with its `conversation_proof` signature beside it (without a
    `conversation_proof`, never).
    """
    auth: dict[str, Any] = {}
    if token_verifier is not None:
        auth = {
            "token_verifier": SDKTokenVerifier(token_verifier),
            # Tokens are issued by the body itself (no OAuth server); the issuer is required by the SDK's model.
            "auth": AuthSettings(issuer_url=base_url, resource_server_url=None),  # type: ignore[arg-type]
        }
    server: MCPServer = MCPServer(name=name, instructions=INSTRUCTIONS, version="0.1.0", **auth)
    access = domain.access

    def caller_of(ctx: Context) -> Caller:
        rc = ctx.request_context
        principal = local_principal
        request = rc.request
        scope = getattr(request, "scope", None)
        if isinstance(scope, dict):
            # Over HTTP the only identity is the bearer token's; never fall back to the local principal.
            user = scope.get("user")
            if not isinstance(user, AuthenticatedUser):
                raise DomainError("forbidden")
            principal = principal_from_access_token(user.access_token)
        meta = rc.meta or {}
        conversation = meta.get(CONVERSATION_META_KEY)
        conversation_id = str(conversation).strip() if conversation else None
        if conversation_id and isinstance(scope, dict):
            # A conversation id travels through the console, logs and the citizen's browser; a token that learned
            # one must not act for its citizen. Only the app itself, holding the secret key, signs the proof.
            proof = meta.get(PROOF_META_KEY)
            if conversation_proof is None or not conversation_proof.valid(conversation_id, proof):
                access.refuse_conversation(principal, conversation_id, "conversation_unproven")
                raise DomainError("forbidden")
        return Caller(principal, conversation_id or None)

    async def run(
        ctx: Context, tool: str, work: Callable[[Caller], dict[str, Any]], shape: type[BaseModel]
    ) -> CallToolResult:
        def act() -> dict[str, Any]:
            return work(caller_of(ctx))  # in the worker thread: a refusal writes its audit row

        try:
            # Through the output model, so every declared field is present (None when not shown to this caller).
            data = shape.model_validate(await anyio.to_thread.run_sync(act)).model_dump(mode="json")
        except DomainError as exc:
            log.info("tool %s refused: %s", tool, exc.code)
            return _error(exc.as_dict())
        except OperationalError:
            log.exception("tool %s: database unavailable", tool)
            return _error(DomainError("unavailable").as_dict())
        except Exception:
            log.exception("tool %s failed", tool)
            return _error(DomainError("unavailable").as_dict())
        return _ok(data)

    def tool(annotations: ToolAnnotations) -> Callable[[_Fn], _Fn]:
        """Registers a tool; its docstring, dedented, is the description the model reads."""

        def register(fn: _Fn) -> _Fn:
            server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), annotations=annotations)
            return fn

        return register

    @tool(READ_ONLY)
    async def citizen_lookup(ctx: Context, cpf: OptionalCpf = None) -> Annotated[CallToolResult, CitizenLookupResult]:
        """Shows the citizen's registration, masked, to confirm who they are.

        In a conversation it returns only the verified citizen (call citizen_verify first); staff and
        integrations with citizens:read and citizens:pii may look up any CPF.
        """

        def work(caller: Caller) -> dict[str, Any]:
            subject = access.subject(caller, "citizens:read", cpf)
            citizen = domain.citizens.get(subject.citizen_id)
            if citizen is None:
                raise DomainError("not_found", "tools.error.citizen_not_found")
            verified = access.verified_citizen(caller) == citizen.id
            access.record(caller, "citizen.read", "citizen", str(citizen.id), tool="citizen_lookup")
            return citizen_profile(citizen, verified=verified)

        return await run(ctx, "citizen_lookup", work, CitizenLookupResult)

    @tool(WRITE_IDEMPOTENT)
    async def citizen_verify(
        ctx: Context,
        cpf: Annotated[str, Field(description="Citizen's CPF, 11 digits, with or without punctuation")],
        birth_date: Annotated[
            str, Field(description="Birth date (data de nascimento): DD/MM/AAAA or AAAA-MM-DD, e.g. 15/03/1985")
        ],
    ) -> Annotated[CallToolResult, CitizenVerifyResult]:
        """Verifies the citizen's identity for this conversation with CPF and birth date.

        On success the conversation may use their personal data (protocols, debts, appointments) for a while.
        A mismatch returns verified=false with the attempts left; too many attempts are refused (rate_limited).
        """

        def work(caller: Caller) -> dict[str, Any]:
            access.mode(caller, "citizens:write")
            if caller.conversation_id is None:
                raise DomainError("invalid_argument", "tools.error.no_conversation")
            outcome = domain.verifier.verify(caller.conversation_id, cpf, birth_date, actor=caller.actor)
            return {
                "verified": outcome.verified,
                "first_name": outcome.first_name,
                "attempts_left": outcome.attempts_left,
            }

        return await run(ctx, "citizen_verify", work, CitizenVerifyResult)

    @tool(WRITE)
    async def protocol_open(
        ctx: Context,
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

        def work(caller: Caller) -> dict[str, Any]:
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

    @tool(READ_ONLY)
    async def protocol_status(
        ctx: Context,
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

        def work(caller: Caller) -> dict[str, Any]:
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

    @tool(WRITE)
    async def protocol_add_comment(
        ctx: Context,
        number: Annotated[str, Field(description="Protocol number AAAA-NNNNNN")],
        text: Annotated[str, Field(description="The comment or new information (complemento)")],
    ) -> Annotated[CallToolResult, ProtocolCommentResult]:
        """Adds a comment to one of the verified citizen's open protocols (staff: any, with protocols:write)."""

        def work(caller: Caller) -> dict[str, Any]:
            owner = domain.protocols.owner_of(number)
            mode = access.owns(caller, "protocols:write", owner, what="protocol", object_id=number)
            author = f"citizen:{owner}" if mode == "conversation" else caller.principal.subject
            comment = domain.protocols.add_comment(number, text, author=author)
            access.record(caller, "protocol.comment", "protocol", normalize_number(number), citizen_id=owner)
            return {
                "number": normalize_number(number),
                "comment_id": str(comment.id),
                "created_at": local_iso(domain.clock, comment.created_at),
            }

        return await run(ctx, "protocol_add_comment", work, ProtocolCommentResult)

    @tool(READ_ONLY)
    async def protocol_list(
        ctx: Context,
        status: Annotated[
            Literal["aberto", "em_analise", "encaminhado", "concluido", "cancelado"] | None,
            Field(description="Only protocols in this status"),
        ] = None,
        cpf: OptionalCpf = None,
    ) -> Annotated[CallToolResult, ProtocolListResult]:
        """The verified citizen's protocols, newest first."""

        def work(caller: Caller) -> dict[str, Any]:
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

    @tool(WRITE)
    async def protocol_update_status(
        ctx: Context,
        number: Annotated[str, Field(description="Protocol number AAAA-NNNNNN")],
        status: Annotated[
            Literal["em_analise", "encaminhado", "concluido", "cancelado"],
            Field(description="New status; the workflow is aberto → em_analise → encaminhado → concluido"),
        ],
        note: Annotated[str | None, Field(description="Note recorded in the history (visible to the owner)")] = None,
    ) -> Annotated[CallToolResult, ProtocolStatusResult]:
        """Moves a protocol along its workflow. Staff and integrations with protocols:write only."""

        def work(caller: Caller) -> dict[str, Any]:
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

    @tool(READ_ONLY)
    async def payment_list_debts(
        ctx: Context,
        status: Annotated[
            Literal["aberto", "vencido", "pago"] | None,
            Field(description="aberto (open, not yet due), vencido (overdue) or pago (paid); omit for all"),
        ] = None,
        cpf: OptionalCpf = None,
    ) -> Annotated[CallToolResult, DebtListResult]:
        """The verified citizen's debts (IPTU, taxas, multas) with amount, due date and status."""

        def work(caller: Caller) -> dict[str, Any]:
            subject = access.subject(caller, "payments:read", cpf)
            debts = domain.debts.list_for(subject.citizen_id, status)
            access.record(caller, "debt.list", "citizen", str(subject.citizen_id), count=len(debts))
            return {"debts": debts}

        return await run(ctx, "payment_list_debts", work, DebtListResult)

    @tool(READ_ONLY_IDEMPOTENT)
    async def payment_second_copy(
        ctx: Context,
        debt_id: Annotated[Id, Field(description="The debt's id, from payment_list_debts")],
    ) -> Annotated[CallToolResult, SecondCopyResult]:
        """Second copy (segunda via) of one of the verified citizen's debts: Pix copia e cola and boleto line.

        An overdue debt is reissued due today.
        """

        def work(caller: Caller) -> dict[str, Any]:
            debt = domain.debts.get(debt_id)
            access.owns(caller, "payments:read", debt.citizen_id, what="debt", object_id=str(debt.id))
            copy = domain.debts.second_copy(debt)
            access.record(caller, "debt.second_copy", "debt", str(debt.id), citizen_id=debt.citizen_id)
            return {
                "debt_id": copy.debt_id,
                "amount": amount_text(int(copy.amount * 100)),
                "due_date": copy.due_date.isoformat(),
                "pix_copia_e_cola": copy.pix_copia_e_cola,
                "boleto_linha_digitavel": copy.boleto_linha_digitavel,
            }

        return await run(ctx, "payment_second_copy", work, SecondCopyResult)

    @tool(READ_ONLY)
    async def appointment_slots(
        ctx: Context,
        service: Annotated[
            str, Field(description="Service code or name: emissao_rg, atendimento_iptu, vacinacao, cadastro_unico")
        ],
        date_from: Annotated[
            str | None, Field(description="First day, DD/MM/AAAA or AAAA-MM-DD (default today)")
        ] = None,
        date_to: Annotated[
            str | None, Field(description="Last day, DD/MM/AAAA or AAAA-MM-DD (default +30 days)")
        ] = None,
    ) -> Annotated[CallToolResult, SlotListResult]:
        """Free appointment slots of a service, soonest first (at most 20)."""

        def work(caller: Caller) -> dict[str, Any]:
            access.mode(caller, "appointments:read")
            start = parse_date(date_from, "data inicial") if date_from else None
            end = parse_date(date_to, "data final") if date_to else None
            return {"slots": domain.appointments.free_slots(service, start, end)}

        return await run(ctx, "appointment_slots", work, SlotListResult)

    @tool(WRITE)
    async def appointment_book(
        ctx: Context,
        slot_id: Annotated[Id, Field(description="The slot's id, from appointment_slots")],
        cpf: OptionalCpf = None,
    ) -> Annotated[CallToolResult, AppointmentResult]:
        """Books a slot for the verified citizen. A slot already taken is refused with conflict."""

        def work(caller: Caller) -> dict[str, Any]:
            subject = access.subject(caller, "appointments:write", cpf)
            booked = domain.appointments.book(subject.citizen_id, slot_id)
            access.record(
                caller, "appointment.create", "appointment", booked["appointment_id"], citizen_id=subject.citizen_id
            )
            return booked

        return await run(ctx, "appointment_book", work, AppointmentResult)

    @tool(DESTRUCTIVE)
    async def appointment_cancel(
        ctx: Context,
        appointment_id: Annotated[Id, Field(description="The appointment's id (from appointment_book or list)")],
    ) -> Annotated[CallToolResult, AppointmentCancelResult]:
        """Cancels one of the verified citizen's appointments and frees the slot. Confirm with the citizen first."""

        def work(caller: Caller) -> dict[str, Any]:
            owner = domain.appointments.owner_of(appointment_id)
            access.owns(caller, "appointments:write", owner, what="appointment", object_id=appointment_id)
            result = domain.appointments.cancel(appointment_id)
            access.record(caller, "appointment.cancel", "appointment", result["appointment_id"], citizen_id=owner)
            return result

        return await run(ctx, "appointment_cancel", work, AppointmentCancelResult)

    @tool(WRITE)
    async def appointment_reschedule(
        ctx: Context,
        appointment_id: Annotated[Id, Field(description="The appointment to move")],
        slot_id: Annotated[Id, Field(description="The new slot, from appointment_slots")],
    ) -> Annotated[CallToolResult, AppointmentRescheduleResult]:
        """Moves one of the verified citizen's appointments to another free slot in one step."""

        def work(caller: Caller) -> dict[str, Any]:
            owner = domain.appointments.owner_of(appointment_id)
            access.owns(caller, "appointments:write", owner, what="appointment", object_id=appointment_id)
            result = domain.appointments.reschedule(appointment_id, slot_id)
            access.record(caller, "appointment.reschedule", "appointment", result["appointment_id"], citizen_id=owner)
            return result

        return await run(ctx, "appointment_reschedule", work, AppointmentRescheduleResult)

    @tool(READ_ONLY)
    async def appointment_list(
        ctx: Context, cpf: OptionalCpf = None
    ) -> Annotated[CallToolResult, AppointmentListResult]:
        """The verified citizen's appointments (booked and cancelled), soonest first."""

        def work(caller: Caller) -> dict[str, Any]:
            subject = access.subject(caller, "appointments:read", cpf)
            rows = domain.appointments.list_for(subject.citizen_id)
            access.record(caller, "appointment.list", "citizen", str(subject.citizen_id), count=len(rows))
            return {"appointments": rows}

        return await run(ctx, "appointment_list", work, AppointmentListResult)

    @tool(WRITE)
    async def handoff_to_human(
        ctx: Context,
        reason: Annotated[str, Field(description="Why a person is needed, in one sentence (motivo)")],
        team: Annotated[
            str | None,
            Field(
                description="Team: atendimento (general), obras, limpeza_urbana, meio_ambiente, tributos, saude, "
                "ouvidoria; unknown or omitted means atendimento"
            ),
        ] = None,
    ) -> Annotated[CallToolResult, HandoffResult]:
        """Hands the conversation over to a human agent of the given team."""

        def work(caller: Caller) -> dict[str, Any]:
            access.mode(caller, "citizens:write")
            if caller.conversation_id is None:
                raise DomainError("invalid_argument", "tools.error.no_conversation")
            key = normalize_key(team or "")
            chosen = key if key in TEAMS else DEFAULT_TEAM
            position = domain.handoffs.enqueue(caller.conversation_id, team=chosen, reason=(reason or "").strip()[:500])
            access.record(caller, "conversation.handoff", "conversation", caller.conversation_id, team=chosen)
            return {"handoff": True, "team": chosen, "queue_position": position}

        return await run(ctx, "handoff_to_human", work, HandoffResult)

    @server.resource(
        "kb://articles/{id}",
        name="knowledge_article",
        description="A knowledge-base article (Markdown). Internal articles only for staff with kb:read.",
        mime_type="text/markdown",
    )
    async def knowledge_article(id: str, ctx: Context) -> str:
        article = await anyio.to_thread.run_sync(domain.articles.get, id)
        if article is None:
            raise ResourceNotFoundError(f"unknown article {id}")
        if article.audience != "public":
            try:
                caller = caller_of(ctx)
            except DomainError as exc:
                raise ResourceNotFoundError(f"unknown article {id}") from exc
            if "kb:read" not in caller.principal.scopes:
                # To everyone else an internal article does not exist.
                raise ResourceNotFoundError(f"unknown article {id}")
        return f"# {article.title}\n\n{article.text}" if not article.text.lstrip().startswith("# ") else article.text

    @server.resource(
        "kb://articles",
        name="knowledge_articles",
        description="Ids of the public knowledge-base articles, one JSON list.",
        mime_type="application/json",
    )
    async def knowledge_articles() -> str:
        ids = await anyio.to_thread.run_sync(domain.articles.ids)
        return json.dumps(ids, ensure_ascii=False)

    return server

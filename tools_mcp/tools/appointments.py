"""The appointment tools: free slots, and booking, cancelling, moving and listing the citizen's appointments."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from domain.access import Caller
from domain.dates import parse_date
from tools_mcp.tools.base import (
    DESTRUCTIVE,
    READ_ONLY,
    WRITE,
    Id,
    OptionalCpf,
    Owned,
    Registration,
    ToolContext,
    ToolDeps,
    act_on_owned,
    run,
)


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


def _appointment_id(result: dict[str, Any]) -> str:
    return str(result["appointment_id"])


async def appointment_slots(
    ctx: ToolContext,
    service: Annotated[
        str, Field(description="Service code or name: emissao_rg, atendimento_iptu, vacinacao, cadastro_unico")
    ],
    date_from: Annotated[str | None, Field(description="First day, DD/MM/AAAA or AAAA-MM-DD (default today)")] = None,
    date_to: Annotated[str | None, Field(description="Last day, DD/MM/AAAA or AAAA-MM-DD (default +30 days)")] = None,
) -> Annotated[CallToolResult, SlotListResult]:
    """Free appointment slots of a service, soonest first (at most 20)."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        deps.access.mode(caller, "appointments:read")
        start = parse_date(date_from, "data inicial") if date_from else None
        end = parse_date(date_to, "data final") if date_to else None
        return {"slots": deps.domain.appointments.free_slots(service, start, end)}

    return await run(ctx, "appointment_slots", work, SlotListResult)


async def appointment_book(
    ctx: ToolContext,
    slot_id: Annotated[Id, Field(description="The slot's id, from appointment_slots")],
    cpf: OptionalCpf = None,
) -> Annotated[CallToolResult, AppointmentResult]:
    """Books a slot for the verified citizen. A slot already taken is refused with conflict."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        access = deps.access
        subject = access.subject(caller, "appointments:write", cpf)
        booked = deps.domain.appointments.book(subject.citizen_id, slot_id)
        access.record(
            caller, "appointment.create", "appointment", booked["appointment_id"], citizen_id=subject.citizen_id
        )
        return booked

    return await run(ctx, "appointment_book", work, AppointmentResult)


async def appointment_cancel(
    ctx: ToolContext,
    appointment_id: Annotated[Id, Field(description="The appointment's id (from appointment_book or list)")],
) -> Annotated[CallToolResult, AppointmentCancelResult]:
    """Cancels one of the verified citizen's appointments and frees the slot. Confirm with the citizen first."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        appointments = deps.domain.appointments
        return act_on_owned(
            deps,
            caller,
            "appointments:write",
            Owned("appointment", appointment_id, appointments.owner_of(appointment_id)),
            lambda _: appointments.cancel(appointment_id),
            audit="appointment.cancel",
            audited_id=_appointment_id,
        )

    return await run(ctx, "appointment_cancel", work, AppointmentCancelResult)


async def appointment_reschedule(
    ctx: ToolContext,
    appointment_id: Annotated[Id, Field(description="The appointment to move")],
    slot_id: Annotated[Id, Field(description="The new slot, from appointment_slots")],
) -> Annotated[CallToolResult, AppointmentRescheduleResult]:
    """Moves one of the verified citizen's appointments to another free slot in one step."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        appointments = deps.domain.appointments
        return act_on_owned(
            deps,
            caller,
            "appointments:write",
            Owned("appointment", appointment_id, appointments.owner_of(appointment_id)),
            lambda _: appointments.reschedule(appointment_id, slot_id),
            audit="appointment.reschedule",
            audited_id=_appointment_id,  # the new appointment's
        )

    return await run(ctx, "appointment_reschedule", work, AppointmentRescheduleResult)


async def appointment_list(
    ctx: ToolContext, cpf: OptionalCpf = None
) -> Annotated[CallToolResult, AppointmentListResult]:
    """The verified citizen's appointments (booked and cancelled), soonest first."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        access = deps.access
        subject = access.subject(caller, "appointments:read", cpf)
        rows = deps.domain.appointments.list_for(subject.citizen_id)
        access.record(caller, "appointment.list", "citizen", str(subject.citizen_id), count=len(rows))
        return {"appointments": rows}

    return await run(ctx, "appointment_list", work, AppointmentListResult)


TOOLS: tuple[Registration, ...] = (
    (appointment_slots, READ_ONLY),
    (appointment_book, WRITE),
    (appointment_cancel, DESTRUCTIVE),
    (appointment_reschedule, WRITE),
    (appointment_list, READ_ONLY),
)

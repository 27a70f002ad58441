"""The payment tools: the citizen's debts, and a second copy (Pix and boleto) of one of them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from domain.access import Caller
from domain.debts import amount_text
from tools_mcp.tools.base import (
    READ_ONLY,
    READ_ONLY_IDEMPOTENT,
    Id,
    OptionalCpf,
    Owned,
    Registration,
    ToolContext,
    ToolDeps,
    act_on_owned,
    run,
)


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


async def payment_list_debts(
    ctx: ToolContext,
    status: Annotated[
        Literal["aberto", "vencido", "pago"] | None,
        Field(description="aberto (open, not yet due), vencido (overdue) or pago (paid); omit for all"),
    ] = None,
    cpf: OptionalCpf = None,
) -> Annotated[CallToolResult, DebtListResult]:
    """The verified citizen's debts (IPTU, taxas, multas) with amount, due date and status."""

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        access = deps.access
        subject = access.subject(caller, "payments:read", cpf)
        debts = deps.domain.debts.list_for(subject.citizen_id, status)
        access.record(caller, "debt.list", "citizen", str(subject.citizen_id), count=len(debts))
        return {"debts": debts}

    return await run(ctx, "payment_list_debts", work, DebtListResult)


async def payment_second_copy(
    ctx: ToolContext,
    debt_id: Annotated[Id, Field(description="The debt's id, from payment_list_debts")],
) -> Annotated[CallToolResult, SecondCopyResult]:
    """Second copy (segunda via) of one of the verified citizen's debts: Pix copia e cola and boleto line.

    An overdue debt is reissued due today.
    """

    def work(deps: ToolDeps, caller: Caller) -> dict[str, Any]:
        debts = deps.domain.debts
        debt = debts.get(debt_id)
        target = Owned("debt", str(debt.id), debt.citizen_id)
        copy = act_on_owned(
            deps,
            caller,
            "payments:read",
            target,
            lambda _: debts.second_copy(debt),
            audit="debt.second_copy",
            audited_id=lambda _: target.object_id,
        )
        return {
            "debt_id": copy.debt_id,
            "amount": amount_text(int(copy.amount * 100)),
            "due_date": copy.due_date.isoformat(),
            "pix_copia_e_cola": copy.pix_copia_e_cola,
            "boleto_linha_digitavel": copy.boleto_linha_digitavel,
        }

    return await run(ctx, "payment_second_copy", work, SecondCopyResult)


TOOLS: tuple[Registration, ...] = (
    (payment_list_debts, READ_ONLY),
    (payment_second_copy, READ_ONLY_IDEMPOTENT),
)

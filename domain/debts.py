"""Debts per citizen (IPTU, taxas, multas) and their second copy through the PaymentProvider."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from domain.calendar import add_business_days, is_business_day
from domain.errors import DomainError
from domain.models import Debt
from domain.payments import DebtCharge, PaymentInstructions, PaymentProvider

DEBT_STATUSES = ("aberto", "vencido", "pago")


def effective_status(debt: Debt, today: date) -> str:
    """ "vencido" is not stored: an open debt becomes overdue the day after its due date."""
    if debt.status == "pago":
        return "pago"
    return "vencido" if debt.due_date < today else "aberto"


def amount_text(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def parse_debt_id(value: str) -> int:
    text = str(value).strip().removeprefix("D-").removeprefix("d-")
    if not text.isdigit():
        raise DomainError("invalid_argument", "tools.error.invalid_debt_id")
    return int(text)


class DebtLedger:
    def __init__(self, session_factory: sessionmaker[Session], provider: PaymentProvider, clock: Clock) -> None:
        self._sessions = session_factory
        self._provider = provider
        self._clock = clock

    def list_for(self, citizen_id: int, status: str | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in DEBT_STATUSES:
            raise DomainError("invalid_argument", "tools.error.unknown_status", options=", ".join(DEBT_STATUSES))
        today = self._clock.today()
        with self._sessions() as session:
            debts = session.scalars(
                select(Debt).where(Debt.citizen_id == citizen_id).order_by(Debt.due_date, Debt.id)
            ).all()
        rows = [self.as_dict(d, today) for d in debts]
        return [r for r in rows if status is None or r["status"] == status]

    def as_dict(self, debt: Debt, today: date) -> dict[str, Any]:
        return {
            "debt_id": str(debt.id),
            "kind": debt.kind,
            "reference": debt.reference,
            "description": debt.description,
            "amount": amount_text(debt.amount_cents),
            "due_date": debt.due_date.isoformat(),
            "status": effective_status(debt, today),
        }

    def get(self, debt_id: str) -> Debt:
        with self._sessions() as session:
            debt = session.get(Debt, parse_debt_id(debt_id))
        if debt is None:
            raise DomainError("not_found", "tools.error.debt_not_found")
        return debt

    def second_copy(self, debt: Debt) -> PaymentInstructions:
        if debt.status == "pago":
            raise DomainError("conflict", "tools.error.debt_paid")
        today = self._clock.today()
        # An overdue debt is reissued due today (or the next business day): banks refuse a boleto past its due
        # date. Late charges are the treasury's rule and the provider's to apply; the local provider keeps the amount.
        if debt.due_date >= today:
            due = debt.due_date
        else:
            due = today if is_business_day(today) else add_business_days(today, 1)
        return self._provider.second_copy(
            DebtCharge(
                debt_id=str(debt.id),
                kind=debt.kind,
                reference=debt.reference,
                amount=Decimal(debt.amount_cents) / 100,
                due_date=due,
            )
        )

"""How a debt becomes something a citizen can pay: the `PaymentProvider` boundary and its local implementation.

A bank's or the treasury's API implements the same protocol; the local one builds valid but unregistered
Pix and boleto codes for the demo.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from domain.boleto import barcode, digitable_line
from domain.pix import PixCharge, build_br_code


@dataclass(frozen=True)
class DebtCharge:
    debt_id: str
    kind: str
    reference: str
    amount: Decimal
    due_date: date


@dataclass(frozen=True)
class PaymentInstructions:
    debt_id: str
    amount: Decimal
    due_date: date
    pix_copia_e_cola: str
    boleto_linha_digitavel: str


class PaymentProvider(Protocol):
    def second_copy(self, charge: DebtCharge) -> PaymentInstructions:
        """Payment codes for the charge; raises DomainError("unavailable") when the provider is down."""
        ...


class LocalPaymentProvider:
    """Valid-looking codes computed locally: a Pix BR Code on the body's key and a boleto with right digits.

    Nothing is registered with a bank, so these codes are for demonstrations and tests only.
    """

    def __init__(self, *, pix_key: str, merchant_name: str, merchant_city: str, bank_code: str) -> None:
        self.pix_key = pix_key
        self.merchant_name = merchant_name
        self.merchant_city = merchant_city
        self.bank_code = bank_code

    def _free_field(self, charge: DebtCharge) -> str:
        # Stands in for a bank's "nosso número": stable per debt and due date, 25 digits.
        seed = hashlib.sha256(f"{charge.debt_id}|{charge.due_date.isoformat()}".encode()).hexdigest()
        return f"{int(charge.debt_id):010d}{int(seed, 16) % 10**15:015d}"

    def second_copy(self, charge: DebtCharge) -> PaymentInstructions:
        txid = f"ATENDE{int(charge.debt_id):010d}{charge.due_date:%Y%m%d}"
        pix = build_br_code(
            PixCharge(
                key=self.pix_key,
                merchant_name=self.merchant_name,
                merchant_city=self.merchant_city,
                amount=charge.amount,
                txid=txid,
            )
        )
        code = barcode(self.bank_code, charge.due_date, charge.amount, self._free_field(charge))
        return PaymentInstructions(
            debt_id=charge.debt_id,
            amount=charge.amount,
            due_date=charge.due_date,
            pix_copia_e_cola=pix,
            boleto_linha_digitavel=digitable_line(code),
        )

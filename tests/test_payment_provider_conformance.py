"""One suite for the `domain.payments.PaymentProvider` contract, run against every implementation.

The contract: payment codes for exactly the charge asked (its debt, amount and due date), a Pix BR Code whose CRC
holds and which carries the amount, a boleto line whose check digits hold and which carries the amount and due
date; and a provider that is down says `DomainError("unavailable")`. A bank's or the treasury's API joins the
list when one is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from core.settings import Settings
from domain.boleto import barcode_from_line, due_date_factor
from domain.errors import DomainError
from domain.payments import DebtCharge, PaymentProvider
from domain.pix import PIX_GUI, decode_br_code
from domain.wiring import build_payment_provider
from tools_mcp.testing import ISSUE, ScriptedPaymentProvider, UnexpectedPaymentRequest

CHARGES = [
    DebtCharge("5", "multa", "AIT 2026-00004", Decimal("195.23"), date(2026, 12, 7)),
    DebtCharge("12", "IPTU", "IPTU 2026 - parcela 3/3", Decimal("285.40"), date(2026, 12, 17)),
    DebtCharge("4012", "taxa", "TLP 2027", Decimal("0.01"), date(2027, 1, 4)),
]


def local(tmp_path: Path) -> PaymentProvider:
    settings = Settings(environment="test", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    return build_payment_provider(settings)


def scripted(tmp_path: Path) -> PaymentProvider:
    return ScriptedPaymentProvider([ISSUE] * len(CHARGES))


PROVIDERS: dict[str, Callable[[Path], PaymentProvider]] = {"local": local, "scripted": scripted}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> PaymentProvider:
    return PROVIDERS[request.param](tmp_path)


@pytest.mark.parametrize("charge", CHARGES, ids=lambda c: c.reference)
def test_the_codes_are_for_exactly_the_charge_asked(provider: PaymentProvider, charge: DebtCharge) -> None:
    copy = provider.second_copy(charge)

    assert (copy.debt_id, copy.amount, copy.due_date) == (charge.debt_id, charge.amount, charge.due_date)


@pytest.mark.parametrize("charge", CHARGES, ids=lambda c: c.reference)
def test_the_pix_code_is_a_valid_br_code_for_the_amount(provider: PaymentProvider, charge: DebtCharge) -> None:
    fields = decode_br_code(provider.second_copy(charge).pix_copia_e_cola)  # raises on a wrong CRC

    assert fields["26.00"] == PIX_GUI
    assert fields["53"] == "986"  # reais
    assert Decimal(fields["54"]) == charge.amount


@pytest.mark.parametrize("charge", CHARGES, ids=lambda c: c.reference)
def test_the_boleto_line_has_valid_digits_and_carries_the_amount_and_due_date(
    provider: PaymentProvider, charge: DebtCharge
) -> None:
    code = barcode_from_line(provider.second_copy(charge).boleto_linha_digitavel)  # raises on a wrong digit

    assert code[3] == "9"  # reais
    assert int(code[5:9]) == due_date_factor(charge.due_date)
    assert Decimal(int(code[9:19])) / 100 == charge.amount


def test_a_provider_that_is_down_says_unavailable() -> None:
    provider = ScriptedPaymentProvider.down()

    with pytest.raises(DomainError) as raised:
        provider.second_copy(CHARGES[0])

    assert raised.value.code == "unavailable"
    assert "indisponível" in raised.value.message


def test_the_scripted_provider_fails_loudly_beyond_its_script() -> None:
    provider = ScriptedPaymentProvider([ISSUE])
    provider.second_copy(CHARGES[0])

    with pytest.raises(UnexpectedPaymentRequest):
        provider.second_copy(CHARGES[1])

    assert provider.charges == CHARGES[:2]
    assert provider.unexpected  # kept for code that swallows the error

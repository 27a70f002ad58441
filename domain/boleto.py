"""Boleto bancário (FEBRABAN): the 44-digit bar code and its 47-digit "linha digitável".

Bar code: bank (3) · currency 9 (1) · general check digit (1) · due-date factor (4) · amount in cents (10) ·
free field (25). The typed line regroups it into three fields with a modulo-10 digit each, the general
modulo-11 digit, and the factor with the amount.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

_FACTOR_BASE = date(1997, 10, 7)


def mod10(digits: str) -> int:
    """FEBRABAN modulo 10: weights 2,1,2,1… from the right, two-digit products summed digit by digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def mod11_barcode(digits: str) -> int:
    """The bar code's general digit: weights 2..9 from the right; 0, 10 and 11 become 1."""
    total = sum(int(ch) * (2 + i % 8) for i, ch in enumerate(reversed(digits)))
    digit = 11 - total % 11
    return 1 if digit in (0, 10, 11) else digit


def due_date_factor(due: date) -> int:
    """Days since 1997-10-07; after 9999 (2025-02-21) the factor restarts at 1000, as FEBRABAN ruled."""
    days = (due - _FACTOR_BASE).days
    if days < 1000:
        raise ValueError(f"due date {due} is before the boleto factor range")
    return days if days <= 9999 else (days - 10000) % 9000 + 1000


def barcode(bank: str, due: date, amount: Decimal, free_field: str) -> str:
    if not (len(bank) == 3 and bank.isdigit() and len(free_field) == 25 and free_field.isdigit()):
        raise ValueError("bank must have 3 digits and the free field 25")
    cents = int((amount * 100).to_integral_exact())
    if not 0 <= cents < 10**10:
        raise ValueError("amount out of range for a boleto")
    body = f"{bank}9{due_date_factor(due):04d}{cents:010d}{free_field}"
    return body[:4] + str(mod11_barcode(body)) + body[4:]


def digitable_line(code: str) -> str:
    """The 47-digit typed line of a 44-digit bar code (digits only, no dots or spaces)."""
    if len(code) != 44 or not code.isdigit():
        raise ValueError("a boleto bar code has 44 digits")
    field1 = code[0:4] + code[19:24]
    field2 = code[24:34]
    field3 = code[34:44]
    return (
        field1 + str(mod10(field1)) + field2 + str(mod10(field2)) + field3 + str(mod10(field3)) + code[4] + code[5:19]
    )


def barcode_from_line(line: str) -> str:
    """The bar code back from a typed line (for checks): inverse of digitable_line, digits verified."""
    digits = "".join(ch for ch in line if ch.isdigit())
    if len(digits) != 47:
        raise ValueError("a boleto typed line has 47 digits")
    for start, end in ((0, 9), (10, 20), (21, 31)):
        if mod10(digits[start:end]) != int(digits[end]):
            raise ValueError(f"wrong check digit at position {end + 1}")
    code = digits[0:4] + digits[32] + digits[33:47] + digits[4:9] + digits[10:20] + digits[21:31]
    if mod11_barcode(code[:4] + code[5:]) != int(code[4]):
        raise ValueError("wrong general check digit")
    return code

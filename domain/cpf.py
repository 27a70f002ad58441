"""CPF handling: validation (validate-docbr), normalisation to 11 digits, masking (the lookup hash is the LGPD
cipher's blind index, see domain.citizens)."""

from __future__ import annotations

import re

from validate_docbr import CPF

from domain.errors import DomainError

# The groups of a CPF, with the separators people type; a dot before the check digits ("529.982.247.25") is as
# common as the dash.
_FORMAT = re.compile(r"\d{3}\.?\d{3}\.?\d{3}[-.]?\d{2}")
_CHECKER = CPF()


def normalize_cpf(value: str) -> str:
    """The 11 digits of a well-formed, valid CPF, or DomainError("invalid_cpf")."""
    candidate = re.sub(r"\s+", "", value or "")
    # validate-docbr pads short input with zeros; a CPF typed with a missing digit must not pass.
    if not _FORMAT.fullmatch(candidate) or not _CHECKER.validate(candidate):
        raise DomainError("invalid_cpf")
    return re.sub(r"\D", "", candidate)


def is_valid_cpf(value: str) -> bool:
    try:
        normalize_cpf(value)
    except DomainError:
        return False
    return True


def mask_cpf(digits: str) -> str:
    """Shows only the middle six digits, as the federal government's publication rule does: ***.456.789-**."""
    return f"***.{digits[3:6]}.{digits[6:9]}-**"

"""What the dialogue keeps of a citizen's credentials: masked in the logs, sealed between turns.

The verification dialogue carries a CPF and a birth date: the stored message and the turn log mask them (dates
too, which ordinary masking keeps), the tool calls are logged with their arguments masked, and the CPF typed
before the birth date is asked for is kept encrypted by a `Sealer`.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from cryptography.fernet import Fernet

from core.privacy import mask

_DATE_LIKE = re.compile(
    r"(?<!\d)\d{1,2}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{2,4}(?!\d)"  # 15/03/1985, 15-3-85
    r"|(?<!\d)\d{4}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{1,2}(?!\d)"  # 1985-03-15, as the extractor also reads
    r"|(?<!\d)\d{8}(?!\d)"
)
# The written forms the extractor reads as a birth date: "15 de março de 1985", "15 mar 1985", "15/mar/85",
# "quinze de março de 1985".
_DAY_IN_WORDS = (
    r"\b(?:(?:vinte|trinta) e (?:um|dois|tr[eê]s|quatro|cinco|seis|sete|oito|nove)|primeiro|um|dois|tr[eê]s|quatro|"
    r"cinco|seis|sete|oito|nove|dez|onze|doze|treze|quatorze|catorze|quinze|dezesseis|dezasseis|dezessete|dezoito|"
    r"dezenove|vinte|trinta)\s+de\s+"
)
_SPELLED_DATE = re.compile(
    rf"(?:\d{{1,2}}|{_DAY_IN_WORDS})\s*(?:de|/|-|\.)?\s*"
    r"(?:janeiro|fevereiro|mar[cç]o|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro|"
    r"jan|fev|mar|abr|mai|jun|jul|ago|set|out|nov|dez)\.?\s*(?:do ano de|de|/|-|\.)?\s*"
    r"\d{2,4}(?!\d)"
    r"|(?<!\d)\d{1,2}\s+\d{1,2}\s+\d{4}(?!\d)",
    re.I,
)


def redact(text: str) -> str:
    """Masked for the turn log and the stored message: personal data and, since this is the verification
    dialogue, any date."""
    return _SPELLED_DATE.sub("[DATA]", _DATE_LIKE.sub("[DATA]", mask(text)))


def masked_argument(name: str, value: Any) -> Any:
    if name == "birth_date":
        return "[DATA]"
    return mask(value) if isinstance(value, str) else value


class Sealer(Protocol):
    """Encrypts a value the dialogue keeps between turns (`core.lgpd.crypto.FieldCipher` is one)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class ProcessSealer:
    """A key that lives as long as the process: for a dialogue used without the app's LGPD cipher."""

    def __init__(self) -> None:
        self._fernet = Fernet(Fernet.generate_key())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode()

"""Consent as the channel needs it: ask before a business-initiated message, record an opt-out at once.

`core.lgpd.consent.ConsentRegister` is the implementation; this Protocol is all the channel depends on.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal, Protocol

CHANNEL: Final = "whatsapp"
ConsentStatus = Literal["opt_in", "opt_out"]
ALL_PURPOSES: Final = "*"
OPT_OUT_KEYWORDS: Final = frozenset({"SAIR", "PARAR"})
# A template needs an opt-in recorded for its purpose: marketing for campaigns, the rest for notifications.
PURPOSE_BY_CATEGORY: Final = {"MARKETING": "campanhas", "UTILITY": "notificacoes", "AUTHENTICATION": "notificacoes"}


class ConsentChecker(Protocol):
    def is_opted_in(self, citizen_ref: str, channel: str, purpose: str) -> bool: ...


class ConsentRecorder(ConsentChecker, Protocol):
    def record(
        self, citizen_ref: str, channel: str, purpose: str, status: ConsentStatus, source: str, *, actor: str = "system"
    ) -> object: ...


def normalise_keyword(text: str) -> str:
    """Upper-case letters only, accents dropped: \"Sair!\" → \"SAIR\", \"opções\" → \"OPCOES\"."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z]", "", plain).upper()


def is_opt_out(text: str | None) -> bool:
    """Whether the whole message is an opt-out keyword ("Sair", "PARAR!"); "quero sair da fila" is not."""
    return bool(text) and len(text or "") <= 20 and normalise_keyword(text or "") in OPT_OUT_KEYWORDS

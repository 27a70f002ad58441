"""Literal values copied out of a citizen's message: CPF, dates, protocol numbers, ids, choices, yes and no.

These never come from the model: a value the citizen did not write cannot reach a tool, whatever a prompt says.
"""

from __future__ import annotations

import re
from datetime import date

from core.privacy import find_pii
from rag.text import fold

_MONTHS = {
    "janeiro": 1,
    "jan": 1,
    "fevereiro": 2,
    "fev": 2,
    "marco": 3,
    "mar": 3,
    "abril": 4,
    "abr": 4,
    "maio": 5,
    "mai": 5,
    "junho": 6,
    "jun": 6,
    "julho": 7,
    "jul": 7,
    "agosto": 8,
    "ago": 8,
    "setembro": 9,
    "set": 9,
    "outubro": 10,
    "out": 10,
    "novembro": 11,
    "nov": 11,
    "dezembro": 12,
    "dez": 12,
}
# Day, month and year with any of the usual separators; a full stop or comma after the year ends a sentence, it
# does not continue the number ("nasci em 15/03/1985.").
_DMY = re.compile(r"(?<!\d)(?<!\d[/.-])(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{2}|\d{4})(?!\d|[/.-]\d)")
_YMD = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_MONTH_NAME = "|".join(sorted(_MONTHS, key=len, reverse=True))
# "15 de março de 1985", "15 março 1985", "15/mar/1985", "15 de marco de 85", "15 de março do ano de 1985".
_SPELLED = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:\s*(?:de|/|-|\.)\s*|\s+)({_MONTH_NAME})\.?"
    r"(?:\s*(?:do ano de|de|/|-|\.)\s*|\s+)(\d{4}|\d{2})(?!\d)"
)
# A day written in words: "dezenove de dezembro de 1958", "primeiro de maio de 1970", "vinte e um de março de 80".
_UNITS = {
    "um": 1,
    "primeiro": 1,
    "dois": 2,
    "tres": 3,
    "quatro": 4,
    "cinco": 5,
    "seis": 6,
    "sete": 7,
    "oito": 8,
    "nove": 9,
}
_DAY_WORDS = {
    **_UNITS,
    **{"dez": 10, "onze": 11, "doze": 12, "treze": 13, "quatorze": 14, "catorze": 14, "quinze": 15},
    **{"dezesseis": 16, "dezasseis": 16, "dezessete": 17, "dezoito": 18, "dezenove": 19, "vinte": 20, "trinta": 30},
    **{f"vinte e {word}": 20 + n for word, n in _UNITS.items() if word != "primeiro"},
    "trinta e um": 31,
}
_DAY_WORD = "|".join(sorted(_DAY_WORDS, key=len, reverse=True))
_SPELLED_DAY = re.compile(
    rf"\b({_DAY_WORD})\s+de\s+({_MONTH_NAME})\.?(?:\s*(?:do ano de|de|/|-|\.)\s*|\s+)(\d{{4}}|\d{{2}})(?!\d)"
)
# Numbers apart by spaces ("15 03 1985") are a date only where a birth date is named or was asked for.
_SPACED = re.compile(r"(?<!\d)(\d{1,2})\s+(\d{1,2})\s+(\d{4})(?!\d)")
_BIRTH_CUE = re.compile(r"\b(nasc\w*|nasci|dn|d\.n\.|data de nasc\w*|aniversario)\b")
_COMPACT = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{4})(?!\d)")
_PROTOCOL = re.compile(r"(?<!\d)(20\d{2})\s*[-/.]?\s*(\d{1,6})(?!\d)(?:-([0-9A-Za-z]{4})(?![0-9A-Za-z]))?")
_ID_AFTER = {
    "appointment": re.compile(
        r"(?:agendamento|atendimento|marcacao|horario|codigo|numero|id)\s*(?:n[o.]?\s*|#\s*)?(\d{1,9})\b"
    ),
    "debt": re.compile(r"(?:debito|divida|boleto|id)\s*(?:n[o.]?\s*|#\s*)?(\d{1,9})\b"),
}
_ORDINALS = {
    "primeir": 1,
    "segund": 2,
    "terceir": 3,
    "quart": 4,
    "quint": 5,
    "sext": 6,
    "setim": 7,
    "oitav": 8,
    "non": 9,
    "decim": 10,
}
_NUMBER_WORDS = {"um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4, "cinco": 5, "seis": 6}
_YES = re.compile(
    r"^\s*(sim|s|ss|sss|confirmo|confirma(do)?|pode( sim| ser| fazer| abrir| marcar| cancelar| agendar| mandar)?|"
    r"isso( mesmo)?|ok|okay|claro|com certeza|certo|correto|exato|perfeito|beleza|blz|manda( ver)?|"
    r"quero|fechado|positivo|yes|afirmativo|tenta(r)?( de novo| novamente)?|de novo|por favor|pfv)\b"
)
_NO = re.compile(
    r"^\s*(nao|n|nn|negativo|cancela|cancelar|deixa( pra la)?|esquece|desisto|pare|para|nope|melhor nao|"
    r"agora nao|nem|no)\b"
)
_STOP = re.compile(r"\b(esquece|deixa pra la|desisto|cancela (isso|tudo|o pedido)|nao quero mais|para tudo)\b")


def cpfs(text: str) -> list[str]:
    """Valid CPFs (check digits checked) in the order written."""
    return [hit.text for hit in find_pii(text) if hit.kind == "CPF"]


def birth_date(text: str, *, compact: bool = False) -> str | None:
    """A plausible birth date as DD/MM/AAAA; 8 bare digits count too when one was asked for (`compact`) or when
    they follow a CPF in the same message ("98369006086 15031985")."""
    folded = fold(text)
    # A CPF must not be read as a date.
    found = cpfs(folded)
    for cpf in found:
        folded = folded.replace(cpf, " ")
    compact = compact or bool(found)
    candidates: list[tuple[int, int, int]] = []
    candidates += [(int(m[1]), int(m[2]), _full_year(m[3])) for m in _DMY.finditer(folded)]
    candidates += [(int(m[3]), int(m[2]), int(m[1])) for m in _YMD.finditer(folded)]
    candidates += [(int(m[1]), _MONTHS[m[2]], _full_year(m[3])) for m in _SPELLED.finditer(folded)]
    candidates += [(_DAY_WORDS[m[1]], _MONTHS[m[2]], _full_year(m[3])) for m in _SPELLED_DAY.finditer(folded)]
    if compact or _BIRTH_CUE.search(folded):
        candidates += [(int(m[1]), int(m[2]), int(m[3])) for m in _SPACED.finditer(folded)]
    if compact:
        candidates += [(int(m[1]), int(m[2]), int(m[3])) for m in _COMPACT.finditer(folded)]
    for day, month, year in candidates:
        try:
            value = date(year, month, day)
        except ValueError:
            continue
        if 1900 <= value.year <= date.today().year:
            return value.strftime("%d/%m/%Y")
    return None


def _full_year(written: str) -> int:
    """A year as written; two digits are the most recent past century's ("85" is 1985, "03" is 2003)."""
    year = int(written)
    if len(written) == 2:
        year += 1900 if year > (date.today().year % 100) else 2000
    return year


def dates(text: str) -> list[date]:
    """Any dates (for appointment ranges), day first; a date without a year is this year's or next year's."""
    folded = fold(text)
    out: list[date] = []
    today = date.today()
    for m in re.finditer(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?(?![\d/])", folded):
        year = int(m[3]) if m[3] else today.year
        if m[3] and len(m[3]) == 2:
            year += 2000
        try:
            value = date(year, int(m[2]), int(m[1]))
        except ValueError:
            continue
        if not m[3] and value < today:
            value = value.replace(year=year + 1)
        out.append(value)
    return out


def protocol_number(text: str) -> str | None:
    for m in _PROTOCOL.finditer(text):
        # A bare year ("IPTU 2026") is not a protocol number: demand the sequence part.
        if len(m[2]) >= 3 or re.search(r"[-/.]", m[0]):
            number = f"{m[1]}-{int(m[2]):06d}"
            # The access code given at opening ("2026-000123-K7Q9") travels with the number.
            return f"{number}-{m[3].upper()}" if m[3] else number
    return None


def object_id(text: str, kind: str) -> str | None:
    """An id the citizen quotes after a word that names it ("agendamento 17")."""
    m = _ID_AFTER[kind].search(fold(text))
    return m[1] if m else None


def choice(text: str, count: int) -> int | None:
    """Which of `count` listed options (1-based) the citizen picked: "2", "o segundo", "opção 3"."""
    folded = fold(text).strip()
    if count <= 0:
        return None
    m = re.fullmatch(r"\D{0,20}?(\d{1,2})[ºo°a]?\s*[.!]?", folded)
    if m and 1 <= int(m[1]) <= count:
        return int(m[1])
    m = re.search(r"\b(?:opcao|numero|n[o.]|item|o|a|do|da)\s*(\d{1,2})\b", folded)
    if m and 1 <= int(m[1]) <= count:
        return int(m[1])
    for stem, n in _ORDINALS.items():
        if re.search(rf"\b{stem}[oa]s?\b", folded) and n <= count:
            return n
    if re.search(r"\b(ultim[oa]|derradeir[oa])\b", folded):
        return count
    for word, n in _NUMBER_WORDS.items():
        if re.fullmatch(rf"(o |a |opcao |numero )?{word}\W*", folded) and n <= count:
            return n
    return None


def is_yes(text: str) -> bool:
    folded = fold(text)
    return bool(_YES.search(folded)) and not _NO.search(folded) and " nao " not in f" {folded} "


def is_no(text: str) -> bool:
    return bool(_NO.search(fold(text)))


def wants_to_stop(text: str) -> bool:
    """The citizen drops what is being asked ("esquece", "desisto")."""
    return bool(_STOP.search(fold(text))) or (is_no(text) and len(fold(text).split()) <= 3)


_STREET = re.compile(
    r"\b((?:rua|r\.|avenida|av\.?|travessa|tv\.|praca|praça|alameda|al\.|estrada|rodovia|largo|viela|beco)"
    r"\s+[^,.;!?\n]{2,60}(?:,?\s*(?:n[º°o.]?\s*)?\d{1,5}\b)?(?:\s*[-–]\s*[A-Za-zÀ-ÿ ]{3,30})?)",
    re.IGNORECASE,
)


def address(text: str) -> str | None:
    """A street address or reference point as written ("Rua das Flores, 120")."""
    # "na minha rua faz tempo" names no street: an address has a number or a proper name after the type.
    for street in _STREET.finditer(text):
        if re.search(r"\d|\s[A-ZÀ-Ý]", street[1]):
            return street[1].strip()
    near = re.search(r"\b(?:perto d[oa]|em frente (?:a|ao|à)|na esquina d[ae]|no bairro)\s+[^.;!?\n]{3,60}", text, re.I)
    return near[0].strip() if near else None

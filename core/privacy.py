"""Detection and masking of Brazilian personal data (LGPD) in free text.

Three uses share one detector (:class:`Masker`):

* :func:`mask` - irreversible, typed placeholders (``[CPF]``, ``[TELEFONE]``...) for logs, turn logs and
  reports. Nothing of the original is kept, not even the last digits: partial identifiers still narrow a
  person down when joined with other data, and logs never need them (correlate by conversation id).
* :class:`Pseudonymizer` - reversible numbered tokens (``<CPF_1>``) for prompts sent to an external
  LLM, put back into the answer with :meth:`Pseudonymizer.restore`.
* :func:`install_log_masking` - masks every log record before any handler sees it.
* :func:`mask_data` - the same as :func:`mask` over a JSON-like structure: exports, evaluation reports,
  audit details.

Administrators add kinds of their own (:func:`configure_masker`, called at start-up with the patterns from
the settings and the database); every function above then masks them too.

What is detected (kinds): ``CPF`` and ``CNPJ`` (check digits validated, including the alphanumeric
CNPJ), ``RG`` (formatted ``12.345.678-9``, UF-prefixed ``MG-12.345.678`` or after a keyword such as
"RG"), ``EMAIL``, ``TELEFONE`` (Brazilian numbers, area code validated) and ``CARTAO`` (payment
cards, Luhn validated), plus any named pattern an administrator adds.

Deliberately *not* masked, because they identify no one and the assistant needs them: public
3-digit service numbers (156, 190), protocol numbers ``AAAA-NNNNNN``, money values, dates, and CEPs
(a CEP points to a street or a whole area; masking it would break "which unit serves my CEP?"
questions), and digit runs inside a longer identifier (a hex id, a UUID: "fb88...0a4222222222222e8").
Names and street addresses are not detected either: regular expressions cannot find them reliably, so
they need a different tool.

Detection is a single pass of one compiled regular expression whose alternatives are tried in
priority order; a candidate that fails validation (wrong check digits, unknown area code...) gives
the lower-priority alternatives a chance at the same position before the scan moves on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from validate_docbr import CNPJ as _CnpjValidator
from validate_docbr import CPF as _CpfValidator

__all__ = [
    "BUILTIN_KINDS",
    "Masker",
    "MaskingFilter",
    "PiiMatch",
    "Pseudonymizer",
    "active_masker",
    "configure_masker",
    "find_pii",
    "install_log_masking",
    "mask",
    "mask_data",
]

CPF: Final = "CPF"
CNPJ: Final = "CNPJ"
RG: Final = "RG"
EMAIL: Final = "EMAIL"
TELEFONE: Final = "TELEFONE"
CARTAO: Final = "CARTAO"
BUILTIN_KINDS: Final = (CPF, CNPJ, RG, EMAIL, TELEFONE, CARTAO)


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text; ``text == source[start:end]``."""

    kind: str
    start: int
    end: int
    text: str


# --- validation -------------------------------------------------------------------------------------

_CPF_CHECK = _CpfValidator()
_CNPJ_CHECK = _CnpjValidator()

# Anatel's area codes; a plausible-looking number with another "area code" is more likely an id.
# fmt: off
_DDDS: Final = frozenset(str(code) for code in (
    *range(11, 20), 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, *range(41, 50), 51, 53, 54, 55,
    *range(61, 70), 71, 73, 74, 75, 77, 79, *range(81, 90), *range(91, 100),
))
# fmt: on

_Accept = Callable[[str], str | None]


_NON_DIGIT = re.compile(r"\D")
_NON_ALNUM = re.compile(r"[\W_]")


def _digits(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def _alnum_upper(value: str) -> str:
    return _NON_ALNUM.sub("", value).upper()


def _accept_cpf(value: str) -> str | None:
    return value if _CPF_CHECK.validate(_digits(value)) else None


def _accept_cnpj(value: str) -> str | None:
    body = _alnum_upper(value)
    # validate_docbr accepts 00.000.000/0000-00 and friends, which are placeholders, not companies.
    if len(set(body)) == 1:
        return None
    return value if _CNPJ_CHECK.validate(body) else None


_LUHN_DOUBLED: Final = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    total = sum(map(int, digits[-1::-2])) + sum(_LUHN_DOUBLED[int(d)] for d in digits[-2::-2])
    return total % 10 == 0


_DIGIT_RUN = re.compile(r"\d+")


def _accept_card(value: str) -> str | None:
    # The pattern is greedy and may swallow a trailing group (a CVV, a year); drop groups from the end
    # so "4111 1111 1111 1111 123" still yields the card.
    groups = [(run.group(), run.end()) for run in _DIGIT_RUN.finditer(value)]
    digits = "".join(group for group, _ in groups)
    count = len(digits)
    for group, end in reversed(groups):
        if count < 13:
            return None
        if count <= 19:
            number = digits[:count]
            if len(set(number)) > 1 and _luhn_ok(number):
                return value[:end]
        count -= len(group)
    return None


def _national_phone(value: str) -> str | None:
    """Area code + subscriber number, or None when ``value`` is not a valid Brazilian phone."""
    digits = _digits(value)
    if value.startswith("+") or (len(digits) in (12, 13) and digits.startswith("55")):
        digits = digits[2:]
    if digits.startswith("0"):  # trunk prefix, as in (019) 3555-0100
        digits = digits[1:]
    if digits[:2] not in _DDDS:
        return None
    if len(digits) == 11:
        return digits if digits[2] == "9" else None
    if len(digits) == 10:
        # A bare 10-digit run is as likely a timestamp or an id as a landline: demand some formatting.
        return digits if not value.isdigit() else None
    return None


def _accept_phone(value: str) -> str | None:
    return value if _national_phone(value) is not None else None


def _is_year(value: str) -> bool:
    return 1900 <= int(value) <= 2099


def _accept_local_phone(value: str) -> str | None:
    first, _, last = value.rpartition("-")
    # "2020-2024" is a period, not a phone.
    if _is_year(_digits(first)[-4:]) and _is_year(last):
        return None
    return value


def _accept_any(value: str) -> str | None:
    return value


# Kinds read from digit runs: inside a longer identifier (a hex id, a UUID, a hash) such a run is part of the
# identifier, not someone's document. The email, RG and extra kinds carry their own boundaries.
_TOKEN_BOUND_KINDS: Final = frozenset({CPF, CNPJ, TELEFONE, CARTAO})
_ID_CHARS: Final = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ID_JOINERS: Final = frozenset("-_")
_ID_SCAN: Final = 64  # how far to look for the rest of an identifier


def _neighbour_has_digit(text: str, index: int, step: int, *, through_joiner: bool) -> bool:
    """Whether the alphanumeric run touching position ``index`` (going by ``step``) holds a digit; with
    ``through_joiner``, the run may start after one hyphen or underscore, as the next group of a UUID does."""
    i = index
    if through_joiner:
        if not (0 <= i < len(text) and text[i] in _ID_JOINERS):
            return False
        i += step
    end = i + step * _ID_SCAN
    while 0 <= i < len(text) and i != end and text[i] in _ID_CHARS:
        if text[i].isdigit():
            return True
        i += step
    return False


def _inside_identifier(text: str, start: int, end: int) -> bool:
    """True when the match is part of a longer token: glued to letters and digits ("fb885a...0a<13 digits>e8"),
    or a middle group joined by hyphens or underscores on both sides ("…-<digits>-…").

    A label glued to the value ("CPF12345678909", "tel:") holds no digit and keeps the match; so does a value
    joined on one side only, since people write "<CPF>-<birth date>" or "<card>-<security code>".
    """
    if _neighbour_has_digit(text, start - 1, -1, through_joiner=False):
        return True
    if _neighbour_has_digit(text, end, 1, through_joiner=False):
        return True
    return _neighbour_has_digit(text, start - 1, -1, through_joiner=True) and _neighbour_has_digit(
        text, end, 1, through_joiner=True
    )


def _canonical(kind: str, text: str) -> str:
    """The form under which two spellings of one value count as the same value."""
    if kind == EMAIL:
        return text.casefold()
    if kind == TELEFONE:
        return _national_phone(text) or _digits(text)
    if kind in BUILTIN_KINDS:
        return _alnum_upper(text)
    return text


# --- patterns ---------------------------------------------------------------------------------------

# Horizontal whitespace only: a line break between two numbers separates them.
_SP = r"[^\S\r\n]"
_SEP = rf"(?:{_SP}|[.\-])"
_UFS = "AC|AL|AP|AM|BA|CE|DF|ES|GO|MA|MT|MS|MG|PA|PB|PR|PE|PI|RJ|RN|RS|RO|RR|SC|SP|SE|TO"


@dataclass(frozen=True)
class _Rule:
    group: str  # unique group name inside the combined pattern
    kind: str
    pattern: str
    accept: _Accept
    value_group: str | None = None  # when the match carries context (a keyword) that must stay visible


# Order is priority: at one position the first rule that matches *and* validates wins.
_BUILTIN_RULES: Final = (
    _Rule(
        "email",
        EMAIL,
        # The lookbehind pins the start to the beginning of a run, which keeps the scan linear on long
        # words; "%" is left out so a logging template like "%s@x.org" is not taken for an address.
        r"(?<![\w.+%-])[\w.+-]+@(?:[\w-]+\.)+[\w-]{2,}",
        _accept_any,
    ),
    _Rule("cnpj", CNPJ, r"(?<!\d)\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}(?!\d)", _accept_cnpj),
    _Rule(
        "cnpj_alnum",
        CNPJ,
        r"(?<![0-9A-Za-z])[0-9A-Z]{2}\.?[0-9A-Z]{3}\.?[0-9A-Z]{3}/?[0-9A-Z]{4}-?\d{2}(?![0-9A-Za-z])",
        _accept_cnpj,
    ),
    _Rule("cpf", CPF, r"(?<!\d)\d{3}[. ]?\d{3}[. ]?\d{3}[-. ]?\d{2}(?!\d)", _accept_cpf),
    _Rule(
        "card",
        CARTAO,
        # Issuer ranges start with 2-6; leaving out 1 also spares millisecond timestamps in logs.
        r"(?<!\d)[2-6]\d{3}(?:(?P<card_sep>[ -]?)\d{4}(?:(?P=card_sep)\d{1,4}){1,3}|[ -]\d{6}[ -]\d{4,5})"
        r"(?!\d)",
        _accept_card,
    ),
    _Rule(
        "phone",
        TELEFONE,
        rf"(?<![\d+])(?:\+{_SP}?55{_SEP}?|55{_SEP}?)?"
        rf"(?:\({_SP}*0?[1-9]{{2}}{_SP}*\)|0?[1-9]{{2}})"
        rf"{_SEP}?(?:9{_SEP}?\d{{4}}|[2-9]\d{{3}}){_SEP}?\d{{4}}(?!\d)",
        _accept_phone,
    ),
    # Without an area code only the dashed form is distinctive enough; 8 bare digits could be a CEP.
    _Rule(
        "phone_local",
        TELEFONE,
        rf"(?<![\d+])(?:9{_SP}?\d{{4}}|[2-5]\d{{3}})-\d{{4}}(?!\d)",
        _accept_local_phone,
    ),
    # RG has no national check digit, so it is only taken when its shape or a keyword says so.
    _Rule(
        "rg_keyword",
        RG,
        r"(?<!\w)(?i:rg|r\.g\.|registro\s+geral|(?:carteira|c[ée]dula)\s+de\s+identidade|identidade)(?![^\W\d])"
        r"[\s:]*(?:(?i:n[º°o.]?|n[úu]mero|num\.?)\s*)?[:.\-]?\s*"
        rf"(?P<rg_keyword_value>(?:(?:{_UFS})[-\s]?)?\d(?:[.\-]?\d){{4,12}}(?:-?[\dXx])?)(?!\w)",
        _accept_any,
        value_group="rg_keyword_value",
    ),
    _Rule(
        "rg_uf",
        RG,
        rf"(?<![\w-])(?:{_UFS})[-\s]?\d{{1,2}}\.?\d{{3}}\.?\d{{3}}(?:-?[\dXx])?(?!\w)",
        _accept_any,
    ),
    _Rule("rg", RG, r"(?<![\w.])\d{1,2}\.\d{3}\.\d{3}-[\dXx](?!\w)", _accept_any),
)

_KIND_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_NUMBERED_BACKREFERENCE = re.compile(r"(?<!\\)\\[1-9]")


class Masker:
    """Finds personal data; extra admin-defined kinds come in as ``{"MATRICULA": r"MAT-\\d{6}"}``.

    Extra patterns are plain regular expressions joined into the combined one, so flags must be scoped
    (``(?i:...)``, not a leading ``(?i)``) and backreferences must name their group. They rank after
    the built-in kinds and are not validated further. Kind names must be ASCII upper case so their
    tokens can be restored. Build a ``Masker`` once and reuse it: all compilation happens here.
    """

    def __init__(self, extra_patterns: Mapping[str, str] | None = None) -> None:
        rules = list(_BUILTIN_RULES)
        for index, (name, pattern) in enumerate((extra_patterns or {}).items()):
            if not _KIND_NAME.fullmatch(name):
                raise ValueError(f"PII kind name {name!r} must be ASCII upper case, digits or '_'")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"PII pattern for {name} does not compile: {exc}") from exc
            if compiled.match(""):
                raise ValueError(f"PII pattern for {name} matches the empty string")
            if _NUMBERED_BACKREFERENCE.search(pattern):
                # Group numbers shift once the pattern joins the combined one; \1 would point elsewhere.
                raise ValueError(f"PII pattern for {name} uses a numbered backreference; name the group")
            rules.append(_Rule(f"extra_{index}", name, pattern, _accept_any))
        try:
            self._combined = re.compile("|".join(f"(?P<{r.group}>{r.pattern})" for r in rules))
        except re.error as exc:  # e.g. a named group or a global flag inside an extra pattern
            raise ValueError(f"PII patterns cannot be combined: {exc}") from exc
        self._rules = tuple(rules)
        self._rank = {rule.group: rank for rank, rule in enumerate(rules)}
        # Used only after a candidate fails validation, to try the remaining kinds at that position.
        self._alone = tuple(re.compile(f"(?P<{r.group}>{r.pattern})") for r in rules)

    def find(self, text: str) -> list[PiiMatch]:
        """Personal data in ``text``: non-overlapping, in order of position."""
        found: list[PiiMatch] = []
        pos = 0
        search = self._combined.search
        while (match := search(text, pos)) is not None:
            hit = self._first_valid(match, text)
            if hit is None:
                pos = match.start() + 1
            else:
                found.append(hit)
                pos = hit.end
        return found

    def mask(self, text: str) -> str:
        """``text`` with each item replaced by ``[KIND]``; irreversible."""
        return self._replace(text, lambda hit: f"[{hit.kind}]")

    def _replace(self, text: str, replacement: Callable[[PiiMatch], str]) -> str:
        parts: list[str] = []
        last = 0
        for hit in self.find(text):
            parts.append(text[last : hit.start])
            parts.append(replacement(hit))
            last = hit.end
        if not parts:
            return text
        parts.append(text[last:])
        return "".join(parts)

    def _first_valid(self, match: re.Match[str], text: str) -> PiiMatch | None:
        rank = self._rank[match.lastgroup or ""]
        hit = self._accept(self._rules[rank], match)
        if hit is not None:
            return hit
        start = match.start()
        for rule, alone in zip(self._rules[rank + 1 :], self._alone[rank + 1 :], strict=True):
            other = alone.match(text, start)
            if other is not None and (hit := self._accept(rule, other)) is not None:
                return hit
        return None

    @staticmethod
    def _accept(rule: _Rule, match: re.Match[str]) -> PiiMatch | None:
        group = rule.value_group or rule.group
        value = match.group(group)
        if not value:
            return None
        accepted = rule.accept(value)
        if not accepted:
            return None
        start = match.start(group)
        end = start + len(accepted)
        if rule.kind in _TOKEN_BOUND_KINDS and _inside_identifier(match.string, start, end):
            return None
        return PiiMatch(rule.kind, start, end, accepted)


_DEFAULT_MASKER: Final = Masker()
_active: Masker = _DEFAULT_MASKER


def configure_masker(extra_patterns: Mapping[str, str] | None = None) -> Masker:
    """Make :func:`mask`, :func:`find_pii`, new :class:`Pseudonymizer` instances and installed log masking
    detect these extra kinds as well as the built-in ones; ``None`` or ``{}`` goes back to the built-in kinds.

    Raises ValueError (and keeps the current configuration) when a pattern is unusable.
    """
    global _active
    masker = Masker(extra_patterns) if extra_patterns else _DEFAULT_MASKER
    _active = masker
    return masker


def active_masker() -> Masker:
    """The masker the module-level functions use: built-in kinds plus the configured extra ones."""
    return _active


def find_pii(text: str) -> list[PiiMatch]:
    """Personal data in ``text`` (built-in and configured kinds), non-overlapping and sorted by position."""
    return _active.find(text)


def mask(text: str) -> str:
    """``text`` with personal data replaced by ``[CPF]``, ``[EMAIL]``... (irreversible)."""
    return _active.mask(text)


def mask_data(value: Any) -> Any:
    """A copy of a JSON-like value with every string masked as :func:`mask` does; dict keys are kept as they are.

    Lists, tuples and dicts are walked; numbers, booleans and None pass through. Use it on anything leaving the
    system for people other than the data subject: exports, evaluation reports, audit details.
    """
    masker = _active
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, Mapping):
        return {key: mask_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(item) for item in value]
    return value


# --- reversible pseudonymization --------------------------------------------------------------------

_TOKEN = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


class Pseudonymizer:
    """Swaps personal data for tokens before text leaves for an external model, and back afterwards.

    One instance per conversation: a value keeps its token across calls, so the model can tell that
    two messages talk about the same CPF. Two spellings of one value (``123.456.789-09`` and
    ``12345678909``, or e-mails differing in case) share a token, and :meth:`restore` writes back the
    spelling seen first. The instance holds the originals in memory; never persist or log it.
    """

    def __init__(self, masker: Masker | None = None) -> None:
        self._masker = masker or _active
        self._tokens: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def pseudonymize(self, text: str) -> str:
        """``text`` with each item replaced by its token, such as ``<CPF_1>``."""
        return self._masker._replace(text, self._token_for)

    def restore(self, text: str) -> str:
        """Put the originals back in place of the tokens this instance issued; others stay as they are."""
        return _TOKEN.sub(lambda m: self._originals.get(m.group(0), m.group(0)), text)

    def _token_for(self, hit: PiiMatch) -> str:
        key = (hit.kind, _canonical(hit.kind, hit.text))
        token = self._tokens.get(key)
        if token is None:
            number = self._counts.get(hit.kind, 0) + 1
            self._counts[hit.kind] = number
            token = f"<{hit.kind}_{number}>"
            self._tokens[key] = token
            self._originals[token] = hit.text
        return token


# --- logging ----------------------------------------------------------------------------------------

_MASKED_FLAG: Final = "_atende_pii_masked"
# Attributes every record has; anything else came from ``extra=`` and may carry personal data.
_STANDARD_RECORD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    _MASKED_FLAG,
}
_TRACEBACK_FORMATTER: Final = logging.Formatter()
_PLAIN_ARG_TYPES: Final = (str, int, float, bool, type(None))


def _masked_args(
    args: tuple[object, ...] | Mapping[str, object], masker: Masker
) -> tuple[object, ...] | dict[str, object] | None:
    """Masked copy of simple arguments, or None when they must be rendered into the message first."""
    values = list(args.values()) if isinstance(args, Mapping) else list(args)
    for value in values:
        if not isinstance(value, _PLAIN_ARG_TYPES):
            return None  # its str() is only known once rendered
        # A number such as an int CPF cannot become "[CPF]" without breaking a %d: render instead.
        if not isinstance(value, str) and masker.find(str(value)):
            return None
    masked = [masker.mask(value) if isinstance(value, str) else value for value in values]
    return dict(zip(args.keys(), masked, strict=True)) if isinstance(args, Mapping) else tuple(masked)


def _mask_message(record: logging.LogRecord, masker: Masker) -> None:
    if getattr(record, _MASKED_FLAG, False):
        return
    setattr(record, _MASKED_FLAG, True)
    args = None
    if isinstance(record.msg, str) and record.args and masker.mask(record.msg) == record.msg:
        # Keep the template and arguments apart when that is safe: formatters such as uvicorn's
        # access log unpack ``record.args``, and error trackers group records by template.
        args = _masked_args(record.args, masker)
    if args is not None:
        record.args = args
    else:
        try:
            message = record.getMessage()
        except Exception:
            # A broken format string would make logging print the raw arguments to stderr later.
            message = f"{record.msg} {record.args!r}"
        record.msg = masker.mask(message)
        record.args = None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # Formatters reuse a cached exc_text, so a masked one keeps the traceback text clean too.
        record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = masker.mask(record.exc_text)
    if record.stack_info:
        record.stack_info = masker.mask(record.stack_info)


def _mask_extras(record: logging.LogRecord, masker: Masker) -> None:
    for key, value in list(vars(record).items()):
        if key not in _STANDARD_RECORD_ATTRS and isinstance(value, str):
            setattr(record, key, masker.mask(value))


class MaskingFilter(logging.Filter):
    """Masks a record's message (arguments included), traceback text and string ``extra=`` fields.

    Never drops a record. Attach it to handlers; on a logger it would only see records logged on that
    very logger, not those propagating from its children.
    """

    def __init__(self, masker: Masker | None = None) -> None:
        super().__init__()
        self.masker = masker  # None: whatever configure_masker() set, at the time of each record

    def filter(self, record: logging.LogRecord) -> bool:
        masker = self.masker or _active
        _mask_message(record, masker)
        _mask_extras(record, masker)
        return True


class _MaskingRecordFactory:
    def __init__(self, inner: Callable[..., logging.LogRecord], masker: Masker | None) -> None:
        self.inner = inner
        self.masker = masker

    def __call__(self, *args: object, **kwargs: object) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        _mask_message(record, self.masker or _active)
        return record


def install_log_masking(logger: logging.Logger | None = None, *, masker: Masker | None = None) -> None:
    """Mask personal data in every log record of the process; safe to call more than once.

    The main mechanism is a wrapper around the log record factory: records are masked when they are
    created, so every logger and every handler - including handlers added later by uvicorn, a test
    runner or a library - only ever sees masked text. A handler filter alone would miss those later
    handlers, and a logger filter misses records propagated from child loggers.

    The factory cannot see ``extra=`` fields (they are attached after the record is built) nor records
    rebuilt with ``logging.makeLogRecord``, so a :class:`MaskingFilter` is also added to the handlers
    that ``logger`` (default: the root logger) has now; handlers added later get only the factory's
    protection unless they are given a filter too.

    Records keep their template and arguments apart when the arguments are plain values, so formatters
    that read ``record.args`` keep working; other records are rendered into ``record.msg`` once.

    Without ``masker``, records are masked with the kinds :func:`configure_masker` sets, even if it is called
    later.
    """
    current = logging.getLogRecordFactory()
    if isinstance(current, _MaskingRecordFactory):
        current.masker = masker
    else:
        logging.setLogRecordFactory(_MaskingRecordFactory(current, masker))
    for handler in (logger or logging.getLogger()).handlers:
        existing = [f for f in handler.filters if isinstance(f, MaskingFilter)]
        if existing:
            for masking_filter in existing:
                masking_filter.masker = masker
        else:
            handler.addFilter(MaskingFilter(masker))

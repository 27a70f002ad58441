"""Data-subject rights (LGPD art. 18): export everything held about a citizen, or erase it; both audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from validate_docbr import CPF

from core.audit import DEFAULT_TIMEZONE, AuditEvent, AuditSink
from core.data_subjects import DataSubject, DataSubjectRegistry
from core.i18n import t
from core.lgpd.refs import pseudonymous_ref
from core.models import utcnow

if TYPE_CHECKING:
    from jinja2 import Template

    from core.lgpd.crypto import FieldCipher

__all__ = ["DataSubjectRights", "EraseReport", "InvalidSubject", "SubjectExport", "render_html"]

_CPF = CPF()


class InvalidSubject(ValueError):
    """The request names no citizen, or names one with an invalid CPF; `key` is the pt-BR message key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def checked_subject(citizen_id: str | None, cpf: str | None, citizen_refs: tuple[str, ...] = ()) -> DataSubject:
    """A subject from request fields: at least one identifier, a CPF with valid check digits (digits kept)."""
    digits = None
    if cpf is not None and cpf.strip():
        digits = "".join(ch for ch in cpf if ch.isdigit())
        if not _CPF.validate(digits):
            raise InvalidSubject("error.lgpd.invalid_cpf")
    refs = tuple(ref.strip() for ref in citizen_refs if ref.strip())
    citizen_id = citizen_id.strip() if citizen_id else None
    if not (citizen_id or digits or refs):
        raise InvalidSubject("error.lgpd.no_subject")
    return DataSubject(citizen_id=citizen_id or None, cpf=digits, citizen_refs=refs)


@dataclass(frozen=True)
class SubjectExport:
    subject: DataSubject
    generated_at: datetime
    sources: dict[str, dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "subject": {
                "citizen_id": self.subject.citizen_id,
                "cpf": self.subject.cpf,
                "citizen_refs": list(self.subject.citizen_refs),
            },
            "sources": self.sources,
        }


@dataclass(frozen=True)
class EraseReport:
    subject_key: str
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@cache
def _template() -> Template:
    from jinja2 import Environment

    source = resources.files("atende.lgpd").joinpath("templates/export.html").read_text(encoding="utf-8")
    return Environment(autoescape=True).from_string(source)


def render_html(export: SubjectExport, *, organization: str, timezone: str = DEFAULT_TIMEZONE) -> str:
    """The export as a self-contained pt-BR page a citizen can read and print."""
    subject = export.subject
    identifiers = [
        (t("lgpd.export.citizen_id"), subject.citizen_id),
        (t("lgpd.export.cpf"), subject.cpf),
        (t("lgpd.export.citizen_refs"), ", ".join(subject.citizen_refs) or None),
    ]
    return _template().render(
        title=t("lgpd.export.title"),
        intro=t("lgpd.export.intro", organization=organization),
        organization=organization,
        generated_at=export.generated_at.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y %H:%M:%S %Z"),
        identifiers=[(name, value) for name, value in identifiers if value],
        labels={"generated_at": t("lgpd.export.generated_at"), "empty": t("lgpd.export.empty")},
        sources=list(export.sources.items()),
    )


class DataSubjectRights:
    """Export and erase across every registered source, each request written to the audit trail."""

    def __init__(
        self,
        registry: DataSubjectRegistry,
        audit: AuditSink,
        cipher: FieldCipher,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.registry = registry
        self._audit = audit
        self._cipher = cipher
        self._clock = clock

    def subject_key(self, subject: DataSubject) -> str:
        """How audit records name this citizen: "citizen:<id>", else their first ref, else a keyed hash of
        the CPF (never the CPF itself)."""
        if subject.citizen_id:
            return f"citizen:{subject.citizen_id}"
        if subject.citizen_refs:
            return subject.citizen_refs[0]
        if subject.cpf:
            return "cpf:" + self._cipher.blind_index(subject.cpf, kind="cpf")[:32]
        raise InvalidSubject("error.lgpd.no_subject")

    def resolve(self, subject: DataSubject) -> DataSubject:
        """The subject with every identifier the modules know; a ref naming a phone in clear ("whatsapp:55…")
        becomes the pseudonymous ref the channels store, so the phone reaches neither the sources nor the audit."""
        refs = tuple(dict.fromkeys(pseudonymous_ref(self._cipher, ref) for ref in subject.citizen_refs))
        return self.registry.resolve(replace(subject, citizen_refs=refs))

    def export(
        self, subject: DataSubject, *, actor: str, ip: str | None = None, user_agent: str | None = None
    ) -> SubjectExport:
        resolved = self.resolve(subject)
        sources = self.registry.export(resolved)
        result = SubjectExport(resolved, self._clock(), sources)
        self._audit.record(
            AuditEvent(
                actor=actor,
                action="lgpd.export",
                object_type="citizen",
                object_id=self.subject_key(resolved),
                ip=ip,
                user_agent=user_agent,
                details={"sources": sorted(sources), "refs": len(resolved.citizen_refs)},
                subject=self.subject_key(resolved),
            )
        )
        return result

    def erase(
        self, subject: DataSubject, *, actor: str, ip: str | None = None, user_agent: str | None = None
    ) -> EraseReport:
        resolved = self.resolve(subject)
        key = self.subject_key(resolved)

        def audit(action: str, details: dict[str, Any]) -> None:
            self._audit.record(AuditEvent(actor, action, "citizen", key, ip, user_agent, details=details, subject=key))

        try:
            rows = self.registry.erase(resolved)
        except Exception as exc:
            # A partial erase must show in the trail too; running it again completes it.
            audit("lgpd.erase_failed", {"error": type(exc).__name__})
            raise
        audit("lgpd.erase", {"rows": rows})
        return EraseReport(key, rows)

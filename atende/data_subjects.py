"""LGPD data-subject rights across modules: each module that holds personal data registers a source here.

The export/erase commands walk every registered source, so a new module only has to implement the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class DataSubject:
    """One citizen as the modules know them: the domain citizen id (citizens table), their CPF (digits only),
    and the `citizen_ref` values conversations carry (e.g. "citizen:<id>", "whatsapp:<business-scoped id>")."""

    citizen_id: str | None = None
    cpf: str | None = None
    citizen_refs: tuple[str, ...] = field(default_factory=tuple)


class PersonalDataSource(Protocol):
    name: str

    def export(self, subject: DataSubject) -> dict[str, Any]:
        """Everything this source holds about the subject, JSON-serialisable."""
        ...

    def erase(self, subject: DataSubject) -> int:
        """Anonymise the subject's personal data, keeping rows needed for statistics; returns rows touched."""
        ...

"""LGPD data-subject rights across modules: each module that holds personal data registers a source here.

The export/erase commands walk every registered source, so a new module only has to implement the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Protocol

# What an erased subject's `citizen_ref` becomes, in every module that holds one.
ANONYMISED_REF_PREFIX: Final = "anonimizado:"


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


class SubjectResolver(Protocol):
    """Completes a subject from what one module knows, e.g. the citizens table maps a CPF to the citizen id and
    the `citizen_ref`s of their conversations. Returns the subject unchanged when it knows nothing more."""

    def resolve(self, subject: DataSubject) -> DataSubject: ...


def merge_subjects(first: DataSubject, second: DataSubject) -> DataSubject:
    """One subject with the identifiers of both (the first one's id and CPF win when both have one)."""
    refs = tuple(dict.fromkeys((*first.citizen_refs, *second.citizen_refs)))
    return DataSubject(first.citizen_id or second.citizen_id, first.cpf or second.cpf, refs)


class DataSubjectRegistry:
    """Every module's personal-data sources and subject resolvers, walked by export and erase.

    Built-in sources (conversations, consent) are registered in `atende.lgpd.wiring.build_lgpd`; a module
    registers its own in `atende.services.build_services`, the same way::

        services.lgpd.data_subjects.register(CitizenDataSource(...))
        services.lgpd.data_subjects.add_resolver(CitizenResolver(...))
    """

    def __init__(self) -> None:
        self._sources: dict[str, PersonalDataSource] = {}
        self._resolvers: list[SubjectResolver] = []

    def register(self, source: PersonalDataSource) -> None:
        if source.name in self._sources:
            raise ValueError(f"personal-data source {source.name!r} is already registered")
        self._sources[source.name] = source

    def add_resolver(self, resolver: SubjectResolver) -> None:
        self._resolvers.append(resolver)

    def names(self) -> list[str]:
        return list(self._sources)

    def resolve(self, subject: DataSubject) -> DataSubject:
        """The subject with every identifier the resolvers know; "citizen:<id>" is always one of its refs."""
        for resolver in self._resolvers:
            subject = merge_subjects(subject, resolver.resolve(subject))
        if subject.citizen_id is not None:
            subject = merge_subjects(subject, DataSubject(citizen_refs=(f"citizen:{subject.citizen_id}",)))
        return subject

    def export(self, subject: DataSubject) -> dict[str, dict[str, Any]]:
        """What each source holds about the (already resolved) subject, by source name."""
        return {name: source.export(subject) for name, source in self._sources.items()}

    def erase(self, subject: DataSubject) -> dict[str, int]:
        """Anonymise the (already resolved) subject in every source; rows touched by source name.

        Sources commit separately, so a failure leaves the earlier ones done; erasing again finishes the job.
        """
        return {name: source.erase(subject) for name, source in self._sources.items()}

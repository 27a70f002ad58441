"""The LGPD pieces built together from the settings; `Services.lgpd` holds the instance."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from atende.lgpd.patterns import PiiPatternStore
from atende.lgpd.retention import RetentionJob
from atende.lgpd.rights import DataSubjectRights
from atende.lgpd.sources import ConsentDataSource, ConversationDataSource
from core.audit import AuditSink
from core.data_subjects import DataSubjectRegistry
from core.lgpd.consent import ConsentRegister
from core.lgpd.crypto import (
    BlindIndexColumn,
    EncryptedColumn,
    FieldCipher,
    RotationReport,
    cipher_from_settings,
    reindex_columns,
    rotate_columns,
)
from core.settings import Settings

__all__ = ["Lgpd", "build_lgpd"]


@dataclass
class Lgpd:
    cipher: FieldCipher
    consent: ConsentRegister
    data_subjects: DataSubjectRegistry
    rights: DataSubjectRights
    retention: RetentionJob
    pii_patterns: PiiPatternStore
    audit: AuditSink
    # Every column holding FieldCipher tokens; `atende lgpd rotate-key` re-encrypts them all.
    encrypted_columns: list[EncryptedColumn] = field(default_factory=list)
    # Every blind-index column; recomputed from the decrypted values by the same command.
    blind_indexes: list[BlindIndexColumn] = field(default_factory=list)

    def warm_up(self) -> None:
        """Load the administrators' extra PII patterns into the process-wide masker (needs a migrated DB)."""
        self.pii_patterns.apply()

    def rotate_keys(self, engine: Engine, *, batch_size: int = 500) -> list[RotationReport]:
        """Re-encrypt with the primary key, then recompute the blind indexes with the current index key."""
        reports = rotate_columns(engine, self.cipher, self.encrypted_columns, batch_size=batch_size)
        return reports + reindex_columns(engine, self.cipher, self.blind_indexes, batch_size=batch_size)


def build_lgpd(settings: Settings, sessions: sessionmaker[Session], audit: AuditSink) -> Lgpd:
    cipher = cipher_from_settings(settings)
    registry = DataSubjectRegistry()
    registry.register(ConversationDataSource(sessions))
    registry.register(ConsentDataSource(sessions))
    return Lgpd(
        cipher=cipher,
        consent=ConsentRegister(sessions, audit),
        data_subjects=registry,
        rights=DataSubjectRights(registry, audit, cipher),
        retention=RetentionJob(sessions, audit),
        pii_patterns=PiiPatternStore(sessions, audit, settings.pii_extra_patterns),
        audit=audit,
    )

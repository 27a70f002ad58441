"""Encryption at rest of sensitive citizen fields, blind indexes for equality lookups, and key rotation.

How a module stores an encrypted field (the citizens table, for example)::

    cipher = services.lgpd.cipher                      # a FieldCipher built from the settings
    row.cpf_encrypted = cipher.encrypt(cpf)            # Fernet token (ASCII text): store in a Text column
    row.cpf_hash = cipher.blind_index(cpf, kind="cpf")  # 64 hex chars: store in a unique String(64) column
    ...
    select(Citizen).where(Citizen.cpf_hash == cipher.blind_index(typed_cpf, kind="cpf"))
    cpf = cipher.decrypt(row.cpf_encrypted)

and registers the columns once, in `build_services`, so `atende lgpd rotate-key` re-encrypts the tokens and
recomputes the index from the decrypted values::

    services.lgpd.encrypted_columns.append(EncryptedColumn("citizens", "cpf_encrypted"))
    services.lgpd.blind_indexes.append(BlindIndexColumn("citizens", "cpf_hash", "cpf_encrypted", kind="cpf"))

(`domain.citizens` is the real example: every personal field of a citizen is stored this way.)

Encryption is explicit (repository code calls encrypt/decrypt), not a column type: a column type would need
the key before any model is imported, and explicit calls keep the key a constructor argument that tests pass.
Keys come from ATENDE_ENCRYPTION_KEYS (comma-separated Fernet keys, the first one encrypts, all of them
decrypt). The blind index key (ATENDE_BLIND_INDEX_KEY) is separate. It is not meant to change, but it can:
`atende lgpd rotate-key` recomputes every registered index from the decrypted value, so after a change of the index
key lookups miss until that command has run (docs/decisions/0021-personal-data-and-encryption.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, column, select, table, update

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "BlindIndexColumn",
    "ConfigurationError",
    "DecryptionError",
    "EncryptedColumn",
    "FieldCipher",
    "RotationReport",
    "cipher_from_settings",
    "derive_key",
    "generate_key",
    "parse_fernet_keys",
    "reindex_columns",
    "rotate_columns",
]


class ConfigurationError(RuntimeError):
    """A key is missing or unusable; raised at start-up, never at the first request."""


class DecryptionError(ValueError):
    """A value was not encrypted with any configured key (or was altered)."""


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from a master secret (HKDF-SHA256)."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=f"atende/{purpose}".encode()).derive(secret.encode())


def generate_key() -> str:
    """A new random Fernet key, as ATENDE_ENCRYPTION_KEYS expects it."""
    return Fernet.generate_key().decode()


def parse_fernet_keys(value: str) -> list[str]:
    """The comma-separated keys of ATENDE_ENCRYPTION_KEYS; raises ValueError naming the position of a bad one."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            # Never echo the key itself: error messages end up in logs.
            raise ValueError(f"ATENDE_ENCRYPTION_KEYS: key #{position} is not a valid Fernet key") from exc
    return keys


_BLANKS = re.compile(r"\s+")


def _normalise(value: str, kind: str) -> str:
    # Two spellings of one CPF, e-mail or name must give the same index.
    if kind in ("cpf", "cnpj", "phone", "digits"):
        return re.sub(r"\D", "", value)
    folded = unicodedata.normalize("NFKC", value).casefold()
    return _BLANKS.sub(" ", folded).strip()


class FieldCipher:
    """Encrypts and decrypts single field values; computes blind indexes. Thread-safe, cheap to share."""

    def __init__(self, keys: Sequence[str | bytes], index_key: bytes) -> None:
        if not keys:
            raise ConfigurationError("at least one encryption key is needed")
        fernets = [Fernet(k if isinstance(k, bytes) else k.encode()) for k in keys]
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self._index_key = index_key

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise DecryptionError("value cannot be decrypted with the configured keys") from exc

    def is_current(self, token: str) -> bool:
        """Whether the value is already encrypted with the primary key."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same value, encrypted with the primary key."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise DecryptionError("value cannot be decrypted with the configured keys") from exc

    def purpose_key(self, purpose: str) -> bytes:
        """A key for another keyed hash of personal data (the assistant's CPF reference), separated by `purpose`
        from every blind index."""
        return hmac.new(self._index_key, f"purpose-key\x00{purpose}".encode(), hashlib.sha256).digest()

    def blind_index(self, value: str, *, kind: str) -> str:
        """A keyed hash (HMAC-SHA256) for equality lookups; `kind` separates domains and picks the normalisation.

        Kinds "cpf", "cnpj", "phone" and "digits" keep digits only; any other kind compares case- and
        space-insensitively.
        """
        message = f"{kind}\x00{_normalise(value, kind)}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


def cipher_from_settings(settings: Settings) -> FieldCipher:
    """The cipher for these settings. Both keys are the deployment's own: Settings refuses production without
    them and gives development and test random ones (core/keys.py); neither is derived from another secret."""
    try:
        keys = parse_fernet_keys(settings.encryption_keys.get_secret_value())
    except ValueError as exc:
        # Production checked the keys in Settings already; development and test accept what they are given, so a
        # malformed key is refused here, without echoing it.
        raise ConfigurationError(str(exc)) from None
    index_secret = settings.blind_index_key.get_secret_value().strip()
    if not keys:
        raise ConfigurationError("ATENDE_ENCRYPTION_KEYS is not set (generate one with `atende lgpd generate-key`)")
    if not index_secret:
        raise ConfigurationError(
            'ATENDE_BLIND_INDEX_KEY is not set (generate one with `python -c "import secrets; '
            'print(secrets.token_urlsafe(48))"`)'
        )
    # The HKDF step only shapes the configured index secret into 32 bytes; it adds no other secret.
    return FieldCipher(keys, derive_key(index_secret, "blind-index"))


@dataclass(frozen=True)
class EncryptedColumn:
    """A text column holding FieldCipher tokens, re-encrypted by `atende lgpd rotate-key`."""

    table: str
    column: str
    primary_key: str = "id"


@dataclass(frozen=True)
class BlindIndexColumn:
    """A blind-index column recomputed by `atende lgpd rotate-key` from the decrypted `source` column.

    Rows whose source is NULL (an erased citizen, say) keep whatever the index column holds.
    """

    table: str
    column: str
    source: str
    kind: str
    primary_key: str = "id"


@dataclass(frozen=True)
class RotationReport:
    column: str
    rotated: int
    already_current: int
    blind_index: bool = False  # True: `rotated` counts recomputed index values, not re-encrypted tokens

    def summary(self) -> str:
        if self.blind_index:
            return f"{self.column}: {self.rotated} blind indexes recomputed, {self.already_current} already current"
        return f"{self.column}: {self.rotated} re-encrypted, {self.already_current} already on the primary key"


def rotate_columns(
    engine: Engine, cipher: FieldCipher, columns: Sequence[EncryptedColumn], *, batch_size: int = 500
) -> list[RotationReport]:
    """Re-encrypt every value not yet on the primary key; resumable, one transaction per batch.

    Fails (DecryptionError) on a value no configured key opens, before changing anything in that batch.
    """
    reports = []
    for spec in columns:
        tbl = table(spec.table, column(spec.primary_key), column(spec.column))
        pk, value = tbl.c[spec.primary_key], tbl.c[spec.column]
        rotated = current = 0
        last: object = None
        while True:
            stmt = select(pk, value).where(value.is_not(None)).order_by(pk).limit(batch_size)
            if last is not None:
                stmt = stmt.where(pk > last)
            with engine.begin() as connection:
                rows = connection.execute(stmt).all()
                for key, token in rows:
                    token = str(token)
                    if cipher.is_current(token):
                        current += 1
                        continue
                    connection.execute(update(tbl).where(pk == key).values({spec.column: cipher.rotate(token)}))
                    rotated += 1
            if len(rows) < batch_size:
                break
            last = rows[-1][0]
        reports.append(RotationReport(f"{spec.table}.{spec.column}", rotated, current))
    return reports


def reindex_columns(
    engine: Engine, cipher: FieldCipher, indexes: Sequence[BlindIndexColumn], *, batch_size: int = 500
) -> list[RotationReport]:
    """Recompute every blind index from its decrypted source with the current index key; resumable, one
    transaction per batch, and a no-op when the key did not change.

    Fails (DecryptionError) on a source no configured key opens, before changing anything in that batch.
    """
    reports = []
    for spec in indexes:
        tbl = table(spec.table, column(spec.primary_key), column(spec.column), column(spec.source))
        pk, index, source = tbl.c[spec.primary_key], tbl.c[spec.column], tbl.c[spec.source]
        recomputed = current = 0
        last: object = None
        while True:
            stmt = select(pk, index, source).where(source.is_not(None)).order_by(pk).limit(batch_size)
            if last is not None:
                stmt = stmt.where(pk > last)
            with engine.begin() as connection:
                rows = connection.execute(stmt).all()
                for key, stored, token in rows:
                    expected = cipher.blind_index(cipher.decrypt(str(token)), kind=spec.kind)
                    if stored == expected:
                        current += 1
                        continue
                    connection.execute(update(tbl).where(pk == key).values({spec.column: expected}))
                    recomputed += 1
            if len(rows) < batch_size:
                break
            last = rows[-1][0]
        reports.append(RotationReport(f"{spec.table}.{spec.column}", recomputed, current, blind_index=True))
    return reports

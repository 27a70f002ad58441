"""Time-based one-time passwords (RFC 6238, via pyotp) and single-use recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Protocol

import pyotp

VALID_WINDOW = 1  # one step either side: phones whose clocks drift by up to 30 seconds still work
RECOVERY_CODES = 10


class Cipher(Protocol):
    """Encrypts the TOTP secret at rest (core.lgpd.crypto.FieldCipher)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads (typed in, or from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def matching_step(secret: str, code: str, now: datetime, *, after: int | None = None) -> int | None:
    """The time step `code` belongs to, within the drift window and later than `after` (no replays)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        step = current + offset
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, when: datetime) -> str:
    """The code an authenticator app shows at `when` (for tests and the CLI)."""
    return pyotp.TOTP(secret).at(when)


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    # 80 random bits each: a plain SHA-256 digest is enough to store them (nothing to brute-force offline).
    raw = [secrets.token_hex(10) for _ in range(count)]
    return ["-".join(code[i : i + 5] for i in range(0, 20, 5)) for code in raw]


def recovery_hash(code: str) -> str:
    normalized = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalized.encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(code.strip().replace("-", "").replace(" ", "")) == 20

"""Meta signs every webhook body with the app secret: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value Meta would send for `body` (tests and the fake Graph API use it too)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs `body` with `secret`; an empty secret or a missing header never does."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    # Constant time: the comparison must not tell an attacker how many leading characters were right.
    return hmac.compare_digest(sign(secret, body), header.strip())

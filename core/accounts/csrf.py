"""CSRF protection for cookie-authenticated requests (bearer-token calls cannot be forged by another site).

Signed-in: the synchronizer token pattern. Each session row holds a random token; every unsafe request must
echo it in the X-CSRF-Token header. Before sign-in (the login form itself): a signed double-submit token,
set as a cookie and echoed in the header; the HMAC stops a value planted from a sibling subdomain.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def same(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class PreSessionTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, cookie: str | None, header: str | None) -> bool:
        """The header echoes the cookie, and the cookie is one this server signed."""
        if not same(cookie, header) or cookie is None or "." not in cookie:
            return False
        nonce, signature = cookie.rsplit(".", 1)
        return hmac.compare_digest(self._sign(nonce), signature)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()[:32]

"""The secrets that decide who may act for a conversation: a conversation id alone never does.

A web chat conversation is bound to a random key the citizen's browser holds in an HttpOnly cookie; the
conversation row keeps only its SHA-256 digest. The assistant's MCP calls carry the conversation id in `_meta`
together with an HMAC of it under the app's secret key, so a bearer token with the `assistant` scope cannot act
for a conversation whose id it learned (docs/decisions/0035-conversation-binding.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import TypeGuard

CHAT_KEY_BYTES = 32
_CHAT_KEY = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32): 256 bits, unpadded base64url
PROOF_META_KEY = "atende/conversation_proof"


def new_chat_key() -> str:
    return secrets.token_urlsafe(CHAT_KEY_BYTES)


def is_chat_key(value: str | None) -> TypeGuard[str]:
    """A value shaped like a key we issue (anything else in the cookie is ignored, never stored)."""
    return value is not None and _CHAT_KEY.fullmatch(value) is not None


def chat_key_digest(key: str) -> str:
    # A plain hash suffices for a 256-bit random key (nothing to guess), and it survives secret-key rotation.
    return hashlib.sha256(key.encode()).hexdigest()


def same_digest(expected: str | None, given: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, given)


class ConversationProof:
    """Signs and checks the conversation id an MCP call acts for; only holders of the app's secret can sign."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def sign(self, conversation_id: str) -> str:
        message = f"mcp-conversation:{conversation_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def valid(self, conversation_id: str, proof: object) -> bool:
        return isinstance(proof, str) and hmac.compare_digest(self.sign(conversation_id), proof)

"""Pseudonymous citizen refs: a channel that knows a citizen only by phone number names them by a keyed hash of it.

A ref such as "whatsapp:<phone>" would copy the phone number into every table that names a citizen (conversations,
consent, contacts, the audit trail), and the audit trail cannot be rewritten when the citizen asks to be erased.
`phone_ref` names them "whatsapp:tel.<32 hex>" instead: the FieldCipher's blind index of the digits (HMAC-SHA256
under ATENDE_BLIND_INDEX_KEY), truncated to 128 bits - stable for lookups, useless without the key
(docs/decisions/0040-pseudonymous-refs-and-verification-privacy.md).
"""

from __future__ import annotations

import re
from typing import Final, Protocol

__all__ = ["PHONE_REF_MARK", "BlindIndexer", "is_phone_ref", "phone_ref", "pseudonymous_ref"]

PHONE_REF_MARK: Final = "tel."
# What a channel puts after "<channel>:" when it only has the phone: digits, an optional "+", 8 to 15 of them (E.164).
_CLEAR_PHONE: Final = re.compile(r"\+?\d{8,15}")
_PSEUDONYM_HEX: Final = 32


class BlindIndexer(Protocol):
    def blind_index(self, value: str, *, kind: str) -> str: ...


def phone_ref(indexer: BlindIndexer, channel: str, phone: str) -> str:
    """The ref of a citizen a channel knows by `phone` alone (any spelling: only the digits count)."""
    digest = indexer.blind_index(phone, kind="phone")[:_PSEUDONYM_HEX]
    return f"{channel}:{PHONE_REF_MARK}{digest}"


def is_phone_ref(ref: str) -> bool:
    """Whether `ref` carries a phone number in clear ("whatsapp:5511987654321")."""
    channel, sep, value = ref.partition(":")
    return bool(sep and channel) and _CLEAR_PHONE.fullmatch(value) is not None


def pseudonymous_ref(indexer: BlindIndexer, ref: str) -> str:
    """`ref` with a clear phone number replaced by its pseudonym; any other ref unchanged."""
    if not is_phone_ref(ref):
        return ref
    channel, _, phone = ref.partition(":")
    return phone_ref(indexer, channel, phone)

"""Refusals and failures the tools report, each with a stable code and a pt-BR message for the citizen."""

from __future__ import annotations

from typing import Any, Literal

from core.i18n import t

ErrorCode = Literal[
    "not_verified",
    "identity_mismatch",
    "invalid_cpf",
    "invalid_argument",
    "not_found",
    "forbidden",
    "rate_limited",
    "conflict",
    "unavailable",
]


class DomainError(Exception):
    """A refusal the caller can act on; `message` is what the citizen reads (pt-BR, from the locale file)."""

    def __init__(self, code: ErrorCode, key: str | None = None, **params: Any) -> None:
        self.code = code
        self.key = key or f"tools.error.{code}"
        self.params = params
        super().__init__(f"{code}: {self.key}")

    @property
    def message(self) -> str:
        return t(self.key, **self.params)

    def as_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}

"""The action dialogue's state, kept in the database as conversation events so any process can continue it.

Each turn that changes the state appends one `action_state` event (in the same transaction as the turn);
the latest one is the current state. It holds what the dialogue needs and no clear personal data: the CPF a
citizen typed while verifying, kept until the birth date comes, is encrypted (`Pending.cpf_encrypted`), since
the message itself is stored redacted. Keys ending in `_encrypted` are dropped when a conversation is erased.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.store import EventView

STATE_EVENT = "action_state"

# What the assistant is waiting for: one argument's value, the CPF, the birth date, a pick from a list,
# a yes/no before acting, or a yes to retry after the tool server failed.
Awaiting = str  # "arg:<name>" | "cpf" | "birth_date" | "choice:<list>" | "confirm" | "retry"


@dataclass(frozen=True)
class Pending:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    awaiting: Awaiting = "confirm"
    # How many times the same question was asked, so a citizen who cannot answer is not asked forever.
    asked: int = 0
    # The CPF typed before the birth date was asked for, encrypted by the dialogue's sealer.
    cpf_encrypted: str | None = None


@dataclass(frozen=True)
class ActionState:
    pending: Pending | None = None
    verified: bool = False
    first_name: str | None = None
    # Lists the citizen was last shown, so "o segundo" or "quero o Pix da multa" can be resolved.
    debts: tuple[dict[str, Any], ...] = ()
    slots: tuple[dict[str, Any], ...] = ()
    appointments: tuple[dict[str, Any], ...] = ()
    protocols: tuple[str, ...] = ()
    last_tool: str | None = None
    # A keyed hash of the verified CPF: enough to notice another citizen's CPF, useless to recover this one.
    cpf_key: str | None = None

    def with_pending(self, pending: Pending | None) -> ActionState:
        return replace(self, pending=pending)

    def as_payload(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["debts"] = list(self.debts)
        payload["slots"] = list(self.slots)
        payload["appointments"] = list(self.appointments)
        payload["protocols"] = list(self.protocols)
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ActionState:
        raw = payload.get("pending")
        pending = (
            Pending(
                tool=str(raw["tool"]),
                arguments=dict(raw.get("arguments") or {}),
                awaiting=str(raw.get("awaiting") or "confirm"),
                asked=int(raw.get("asked") or 0),
                cpf_encrypted=raw.get("cpf_encrypted") or None,
            )
            if isinstance(raw, Mapping) and raw.get("tool")
            else None
        )
        return cls(
            pending=pending,
            verified=bool(payload.get("verified")),
            first_name=payload.get("first_name") or None,
            debts=tuple(dict(d) for d in payload.get("debts") or ()),
            slots=tuple(dict(s) for s in payload.get("slots") or ()),
            appointments=tuple(dict(a) for a in payload.get("appointments") or ()),
            protocols=tuple(str(p) for p in payload.get("protocols") or ()),
            last_tool=payload.get("last_tool") or None,
            cpf_key=payload.get("cpf_key") or None,
        )


def current_state(events: Sequence[EventView]) -> ActionState:
    for event in reversed(events):
        if event.kind == STATE_EVENT:
            return ActionState.from_payload(event.payload)
    return ActionState()

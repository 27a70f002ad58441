"""One turn of the action dialogue: what it says and calls as it goes, what it hands back, and the steps it takes.

`ActionDialogue` is put together from one class of steps per module (identity, filling, choices, execution,
handoff). A step often leads to one in another module (an answer, then the verification, then the call), so
`DialogueSteps` declares the steps the modules call on one another, and each module implements its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.llm import Usage
from assistant.tools.chooser import ToolChoice
from assistant.tools.dialogue.credentials import Sealer, masked_argument
from assistant.tools.intent import Reading
from assistant.tools.session import ToolResult, ToolSession
from assistant.tools.state import STATE_EVENT, ActionState, Pending
from core.store import ConversationStore, EventDraft


@dataclass
class ActionOutcome:
    """What the dialogue did this turn. `passthrough`: not an action; the pipeline answers, the state is kept."""

    answer: str
    state: ActionState
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    decision: Literal["answered", "handoff"] = "answered"
    handoff_team: str | None = None
    used_model: bool = False
    usage: Usage = field(default_factory=Usage)
    # The turn carried identity data (a birth date, a CPF): the turn log masks dates too.
    sensitive: bool = False
    error: str | None = None
    reason: str = ""
    passthrough: bool = False
    state_changed: bool = True

    def state_event(self) -> EventDraft | None:
        """The event that stores the new state, or None when the turn left it as it was."""
        if not self.state_changed:
            return None
        return EventDraft(STATE_EVENT, self.state.as_payload())

    def logged_calls(self) -> list[dict[str, Any]]:
        """The tool calls with their arguments masked, for the turn log."""
        return [
            {**call, "arguments": {k: masked_argument(k, v) for k, v in call.get("arguments", {}).items()}}
            for call in self.tool_calls
        ]


@dataclass
class _Turn:
    conversation_id: str
    state: ActionState
    loaded: ActionState
    parts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    choice: ToolChoice | None = None
    sensitive: bool = False
    error: str | None = None
    decision: Literal["answered", "handoff"] = "answered"
    handoff_team: str | None = None

    def say(self, text: str) -> None:
        self.parts.append(text)

    def outcome(self, reason: str = "") -> ActionOutcome:
        choice = self.choice or ToolChoice(None)
        return ActionOutcome(
            state_changed=self.state != self.loaded,
            answer="\n\n".join(p for p in self.parts if p),
            state=self.state,
            tool_calls=self.calls,
            decision=self.decision,
            handoff_team=self.handoff_team,
            used_model=choice.used_model,
            usage=choice.usage,
            sensitive=self.sensitive,
            error=self.error or choice.error,
            reason=reason,
        )


class DialogueSteps(ABC):
    """The dialogue's collaborators, and the steps one module of the dialogue calls in another."""

    tools: ToolSession
    store: ConversationStore
    _identity_key: bytes
    _sealer: Sealer

    @abstractmethod
    def available(self) -> tuple[str, ...]: ...

    # assistant.tools.dialogue.filling

    @abstractmethod
    def _advance(self, turn: _Turn, pending: Pending, text: str) -> ActionOutcome: ...

    @abstractmethod
    def _ask(self, turn: _Turn, pending: Pending, key: str, **params: Any) -> ActionOutcome: ...

    @abstractmethod
    def _new_request(self, reading: Reading, pending: Pending) -> bool: ...

    @abstractmethod
    def _reask(self, turn: _Turn, pending: Pending, key: str, **params: Any) -> ActionOutcome: ...

    # assistant.tools.dialogue.identity

    @abstractmethod
    def _verification_step(self, turn: _Turn, then: Pending | None, text: str) -> ActionOutcome: ...

    @abstractmethod
    def _verification_answer(
        self, turn: _Turn, pending: Pending, text: str, reading: Reading
    ) -> ActionOutcome | None: ...

    # assistant.tools.dialogue.choices

    @abstractmethod
    def _choice_answer(self, turn: _Turn, pending: Pending, text: str, reading: Reading) -> ActionOutcome | None: ...

    @abstractmethod
    def _resolve(self, turn: _Turn, pending: Pending, text: str) -> Pending | None: ...

    @abstractmethod
    def _show_slots(self, turn: _Turn, service: str, dates: Mapping[str, Any]) -> None: ...

    # assistant.tools.dialogue.execution

    @abstractmethod
    def _call(self, turn: _Turn, name: str, args: Mapping[str, Any]) -> ToolResult | None: ...

    @abstractmethod
    def _ok_or_explain(self, turn: _Turn, result: ToolResult, pending: Pending) -> bool: ...

    @abstractmethod
    def _execute(self, turn: _Turn, pending: Pending) -> ActionOutcome: ...

    # assistant.tools.dialogue.handoff

    @abstractmethod
    def _handoff(self, turn: _Turn, text: str, *, reason: str, team: str | None = None) -> ActionOutcome: ...

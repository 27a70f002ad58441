"""A test double for the tool boundary; it ships in the package so tests and evaluation share it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.tools.catalog import POLICIES
from assistant.tools.session import ToolResult, ToolSpec, ToolUnavailable


class UnexpectedToolCall(AssertionError):
    """The code under test called a tool the test did not script (or in another order)."""


@dataclass
class ScriptedToolSession:
    """Answers scripted calls in order: each step is (tool name, ToolResult or ToolUnavailable to raise).

    Fails loudly on a call to another tool than the next step names, and on a call with no step left;
    `calls` keeps every call made, `assert_consumed()` fails on leftover steps.
    """

    steps: list[tuple[str, ToolResult | ToolUnavailable]] = field(default_factory=list)
    tools: Sequence[str] = tuple(POLICIES)
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    closed: bool = False

    def warm_up(self) -> None:
        return None

    def list_tools(self) -> list[ToolSpec]:
        return [ToolSpec(name, POLICIES[name].summary if name in POLICIES else "") for name in self.tools]

    def call_tool(self, name: str, arguments: Mapping[str, Any], *, conversation_id: str) -> ToolResult:
        self.calls.append((name, dict(arguments), conversation_id))
        if not self.steps:
            raise UnexpectedToolCall(f"unscripted tool call {name}({dict(arguments)!r})")
        expected, outcome = self.steps.pop(0)
        if expected != name:
            raise UnexpectedToolCall(f"expected a call to {expected}, got {name}({dict(arguments)!r})")
        if isinstance(outcome, ToolUnavailable):
            raise outcome
        return outcome

    def close(self) -> None:
        self.closed = True

    def assert_consumed(self) -> None:
        if self.steps:
            raise AssertionError(f"{len(self.steps)} scripted tool step(s) were never used")

"""The tool boundary the assistant acts through: list the tools, call one on behalf of a conversation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# The conversation a call acts for travels in the request's `_meta` under this key. Our code sets it; the
# model never sees or fills it, so a prompt cannot make the assistant act for another conversation.
CONVERSATION_META_KEY = "atende/conversation_id"


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the server lists it."""

    name: str
    description: str
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    read_only: bool = False
    destructive: bool = False


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one call: structured data, or an error code with the server's pt-BR message."""

    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    message: str | None = None

    @classmethod
    def failure(cls, error: str, message: str | None = None) -> ToolResult:
        return cls(ok=False, error=error, message=message)


class ToolUnavailable(RuntimeError):
    """The tool server could not be reached or did not answer in time; nothing was done on our side."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


@runtime_checkable
class ToolSession(Protocol):
    """A connection to the tool server, usable from synchronous code (the respond pipeline runs in a thread)."""

    def warm_up(self) -> None: ...

    def list_tools(self) -> list[ToolSpec]: ...

    def call_tool(self, name: str, arguments: Mapping[str, Any], *, conversation_id: str) -> ToolResult:
        """Call `name`; raise ToolUnavailable when the server cannot answer (a refusal is a ToolResult)."""
        ...

    def close(self) -> None: ...


def parse_payload(structured: Mapping[str, Any] | None, texts: list[str]) -> dict[str, Any]:
    """The JSON object a tool answered with: its structured content, else the first JSON object in its text.

    Servers wrap error text differently ("Error executing tool x: {...}"), so the object is searched for.
    """
    if structured:
        return dict(structured)
    decoder = json.JSONDecoder()
    for text in texts:
        start = text.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                start = text.find("{", start + 1)
                continue
            if isinstance(value, dict):
                return value
            start = text.find("{", start + 1)
    return {}


def result_from(payload: Mapping[str, Any], *, is_error: bool) -> ToolResult:
    if not is_error:
        return ToolResult(ok=True, data=dict(payload))
    code = payload.get("error")
    message = payload.get("message")
    return ToolResult.failure(
        str(code) if code else "unavailable", str(message) if isinstance(message, str) and message else None
    )

"""The language-model boundary: one small protocol every backend and fake implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Tokens of the prompt that were actually evaluated; fewer than prompt_tokens means a cached prefix was reused.
    prompt_tokens_evaluated: int | None = None


@dataclass(frozen=True)
class StreamChunk:
    """A piece of generated text; the last chunk of a stream carries the usage and no text."""

    text: str = ""
    usage: Usage | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage


class LLMError(RuntimeError):
    """The model could not produce an answer (unreachable, timed out, or returned garbage)."""


@runtime_checkable
class ChatModel(Protocol):
    @property
    def model_id(self) -> str: ...

    def warm_up(self) -> None: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[StreamChunk]: ...

    def complete_json(
        self,
        messages: Sequence[ChatMessage],
        *,
        schema: Mapping[str, Any],
        max_tokens: int,
    ) -> Completion:
        """Generate output constrained to (or at least asked to follow) a JSON schema."""
        ...


def complete(model: ChatModel, messages: Sequence[ChatMessage], *, max_tokens: int, **kw: Any) -> Completion:
    """Collect a stream into one completion."""
    parts: list[str] = []
    usage = Usage()
    for chunk in model.stream(messages, max_tokens=max_tokens, **kw):
        parts.append(chunk.text)
        if chunk.usage is not None:
            usage = chunk.usage
    return Completion("".join(parts), usage)


@dataclass(frozen=True)
class ToolDefinition:
    """A function the model may choose, OpenAI-style: `parameters` is a JSON schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@runtime_checkable
class ToolCallingModel(Protocol):
    """A ChatModel whose endpoint can choose among tools natively (OpenAI `tools`); optional.

    `native_tool_calls` says whether to use it: a model without it gets the tools as a JSON schema through
    `complete_json` instead (llama.cpp constrains its output with a grammar built from the schema).
    """

    @property
    def native_tool_calls(self) -> bool: ...

    def choose_tool(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolDefinition], max_tokens: int
    ) -> tuple[ToolCall | None, Usage]:
        """The tool the model calls (None when it answers without one) and the usage."""
        ...

"""Test doubles for the LLM boundary. They ship in the package so tests and evaluation share them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from assistant.grounding import DONT_KNOW
from assistant.llm import ChatMessage, Completion, LLMError, StreamChunk, ToolCall, ToolDefinition, Usage

Step = str | Callable[[Sequence[ChatMessage]], str] | BaseException


class UnexpectedModelCall(AssertionError):
    """The code under test called the model more times than the test scripted."""


# Open `scripted_models_checked()` blocks, innermost last, each with the models made inside it (from any thread).
_watches: list[list[ScriptedChatModel]] = []
_watches_lock = threading.Lock()


class ScriptedChatModel:
    """A model that replays scripted replies in order and fails loudly on an unscripted call or a leftover step.

    A step is a reply string, a function of the messages returning the reply, or an exception to raise
    (to test failure handling). A call beyond the script raises `UnexpectedModelCall`; the code under test may
    catch it, so the model also remembers it, and `scripted_models_checked()` (which the test suite wraps around
    every test) fails when any model made in the block was called beyond its script or left steps unused.
    `exact=False` makes the steps a budget instead, for stand-ins whose number of calls depends on their input
    (the evaluation's extractive model): leftover steps are then fine, calls beyond them still are not.

    `calls` keeps every prompt for assertions; `add()` appends steps; `assert_consumed()` checks on the spot;
    `take_unexpected()` clears calls beyond the script that a test provoked on purpose.
    With `native_tool_calls=True` it also stands for an endpoint with OpenAI tool calling: a `choose_tool` step
    is JSON `{"name": ..., "arguments": {...}}`, or `{"name": null}` for no tool.
    """

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        model_id: str = "scripted",
        chunk_size: int = 8,
        native_tool_calls: bool = False,
        exact: bool = True,
    ) -> None:
        self._steps = list(steps)
        self._scripted = len(self._steps)
        self._native_tool_calls = native_tool_calls
        self.tool_offers: list[list[ToolDefinition]] = []
        self._chunk_size = chunk_size
        self._model_id = model_id
        self._exact = exact
        self.calls: list[list[ChatMessage]] = []
        self.unexpected: list[str] = []
        with _watches_lock:
            if _watches:
                _watches[-1].append(self)  # the innermost block checks it

    def add(self, *steps: Step) -> ScriptedChatModel:
        """Script more steps, after the ones already there."""
        self._steps.extend(steps)
        self._scripted += len(steps)
        return self

    def take_unexpected(self) -> list[str]:
        """The calls beyond the script so far, forgotten once taken: for a test that provokes one on purpose."""
        taken, self.unexpected = self.unexpected, []
        return taken

    def problems(self) -> list[str]:
        """What went against the script: calls beyond it, and (when exact) steps never used."""
        found = list(self.unexpected)
        if self._exact and self._steps:
            found.append(
                f"{len(self._steps)} of {self._scripted} scripted step(s) of model {self._model_id!r} were never used"
                f" ({len(self.calls)} call(s) made): script exactly the calls the code makes"
            )
        return found

    @property
    def model_id(self) -> str:
        return self._model_id

    def warm_up(self) -> None:
        return None

    def _next(self, messages: Sequence[ChatMessage]) -> str:
        self.calls.append(list(messages))
        if not self._steps:
            last = messages[-1]["content"][:200] if messages else ""
            problem = (
                f"unscripted call #{len(self.calls)} to model {self._model_id!r}, scripted for {self._scripted}"
                f" call(s); last message: {last!r}"
            )
            self.unexpected.append(problem)
            raise UnexpectedModelCall(problem)
        step = self._steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step(messages) if callable(step) else step

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[StreamChunk]:
        text = self._next(messages)
        for i in range(0, len(text), self._chunk_size):
            yield StreamChunk(text=text[i : i + self._chunk_size])
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        yield StreamChunk(usage=Usage(prompt_tokens, len(text.split()), prompt_tokens))

    def complete_json(
        self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any], max_tokens: int
    ) -> Completion:
        text = self._next(messages)
        return Completion(text, Usage(None, len(text.split()), None))

    @property
    def native_tool_calls(self) -> bool:
        return self._native_tool_calls

    def choose_tool(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolDefinition], max_tokens: int
    ) -> tuple[ToolCall | None, Usage]:
        if not self._native_tool_calls:
            problem = f"choose_tool called on scripted model {self._model_id!r}, made without native tool calls"
            self.unexpected.append(problem)
            raise UnexpectedModelCall(problem)
        self.tool_offers.append(list(tools))
        raw = json.loads(self._next(messages))
        if not isinstance(raw, dict) or not raw.get("name"):
            return None, Usage()
        return ToolCall(str(raw["name"]), dict(raw.get("arguments") or {})), Usage()

    def assert_consumed(self) -> None:
        if self._steps:
            raise AssertionError(f"{len(self._steps)} scripted model step(s) were never used")


@contextmanager
def scripted_models_checked() -> Iterator[list[ScriptedChatModel]]:
    """Fail at the end of the block if a ScriptedChatModel made inside it went against its script.

    Calls beyond a script are caught here even when the code under test swallowed the `UnexpectedModelCall`
    (a worker that retries on any error, a stream that reports errors in-band). Nothing is checked when the
    block itself raised: that failure comes first. Yields the list of models made so far.
    """
    made: list[ScriptedChatModel] = []
    with _watches_lock:
        _watches.append(made)
    try:
        yield made
    finally:
        with _watches_lock:
            _watches.remove(made)
    problems = [problem for model in made for problem in model.problems()]
    if problems:
        raise AssertionError("scripted model used against its script:\n  " + "\n  ".join(problems))


class FailingChatModel:
    """A model that always fails, as an unreachable endpoint or a crashed runtime would."""

    def __init__(self, error: str = "model unavailable") -> None:
        self._error = error

    @property
    def model_id(self) -> str:
        return "failing"

    def warm_up(self) -> None:
        return None

    def stream(self, messages: Sequence[ChatMessage], **_: Any) -> Iterator[StreamChunk]:
        raise LLMError(self._error)

    def complete_json(self, messages: Sequence[ChatMessage], **_: Any) -> Completion:
        raise LLMError(self._error)


class PermissiveChatModel:
    """A model that answers any call without a script, for tests that cannot know how often it is asked (fuzzing).

    It never pretends to know anything: text is always the refusal marker, so the assistant abstains; JSON is the
    simplest document the schema allows (first enum value, first alternative, empty strings); it never picks a
    native tool. `calls` counts the prompts it was given.
    """

    def __init__(self, answer: str = DONT_KNOW, *, model_id: str = "permissive") -> None:
        self._answer = answer
        self._model_id = model_id
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    def warm_up(self) -> None:
        return None

    def stream(self, messages: Sequence[ChatMessage], **_: Any) -> Iterator[StreamChunk]:
        self.calls += 1
        yield StreamChunk(text=self._answer)
        yield StreamChunk(usage=Usage(None, len(self._answer.split()), None))

    def complete_json(
        self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any], max_tokens: int
    ) -> Completion:
        self.calls += 1
        return Completion(json.dumps(simplest_instance(schema), ensure_ascii=False), Usage())

    @property
    def native_tool_calls(self) -> bool:
        return False

    def choose_tool(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolDefinition], max_tokens: int
    ) -> tuple[ToolCall | None, Usage]:
        self.calls += 1
        return None, Usage()


def simplest_instance(schema: Mapping[str, Any]) -> Any:
    """The plainest value valid under the JSON schemas the assistant writes (const, enum, anyOf, objects)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return simplest_instance(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: simplest_instance(properties.get(name, {})) for name in schema.get("required", [])}
    plain: dict[str, Any] = {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}
    return plain.get(str(kind))


def json_reply(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)

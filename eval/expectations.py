"""Checks one turn's reply against its expectations; every failure says which expectation and why."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.suite import Expect, ExpectedCall, ToolCallsExpectation
from rag.text import fold


@dataclass(frozen=True)
class Observation:
    """What the assistant did in one turn, as the expectations see it."""

    answer: str
    decision: str  # what the channel reported: "handoff" when the gate queued the conversation
    route: str
    cited: tuple[str, ...] = ()
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    handoff_team: str | None = None
    language: str = "pt-BR"
    latency_ms: float = 0.0
    # The assistant's own decision: "abstained" even when the gate then queued the conversation for a person.
    # None: the same as `decision` (also when the message went to the agent, whose decision is "handoff").
    assistant_decision: str | None = None

    @property
    def handed_off(self) -> bool:
        return self.decision == "handoff" or bool(self.handoff_team)

    @property
    def abstained(self) -> bool:
        return (self.assistant_decision or self.decision) == "abstained"


@dataclass(frozen=True)
class Failure:
    expectation: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"expectation": self.expectation, "reason": self.reason}


@dataclass(frozen=True)
class ToolMatch:
    """How the expected calls of one turn matched the calls made: counts feed precision and recall."""

    matched: int
    expected: int
    called: int
    missing: list[ExpectedCall] = field(default_factory=list)
    unexpected: list[Mapping[str, Any]] = field(default_factory=list)


def normalise(text: str) -> str:
    """Case- and accent-insensitive form with collapsed whitespace, for contains / not_contains."""
    return " ".join(fold(text).split())


def check(expect: Expect, seen: Observation) -> list[Failure]:
    failures: list[Failure] = []
    answer = normalise(seen.answer)
    missing = [s for s in expect.contains if normalise(s) not in answer]
    if missing:
        failures.append(Failure("contains", f"answer lacks {_quote(missing)}"))
    if expect.contains_any and not any(normalise(s) in answer for s in expect.contains_any):
        failures.append(Failure("contains_any", f"answer has none of {_quote(expect.contains_any)}"))
    present = [s for s in expect.not_contains if normalise(s) in answer]
    if present:
        failures.append(Failure("not_contains", f"answer contains {_quote(present)}"))
    failures += _check_cites(expect, seen)
    if expect.abstains is not None and seen.abstained != expect.abstains:
        want = "abstain" if expect.abstains else "not abstain"
        failures.append(Failure("abstains", f"expected to {want}, decision was {seen.decision!r}"))
    if expect.route is not None and seen.route != expect.route:
        failures.append(Failure("route", f"expected route {expect.route!r}, got {seen.route!r}"))
    if expect.tool_calls is not None:
        result = match_tool_calls(expect.tool_calls, seen.tool_calls)
        if result.missing:
            names = ", ".join(_call_repr(c.name, c.arguments) for c in result.missing)
            made = ", ".join(_call_repr(str(c.get("name")), c.get("arguments") or {}) for c in seen.tool_calls)
            order = " in order" if expect.tool_calls.ordered else ""
            failures.append(Failure("tool_calls", f"expected{order} {names}; calls made: {made or 'none'}"))
        elif expect.tool_calls.exclusive and result.unexpected:
            extra = ", ".join(_call_repr(str(c.get("name")), c.get("arguments") or {}) for c in result.unexpected)
            failures.append(Failure("tool_calls", f"unexpected extra call(s): {extra}"))
    failures += _check_handoff(expect, seen)
    if expect.language is not None and seen.language != expect.language:
        failures.append(Failure("language", f"expected a reply in {expect.language}, got {seen.language}"))
    if expect.max_latency_ms is not None and seen.latency_ms > expect.max_latency_ms:
        failures.append(
            Failure("max_latency_ms", f"took {seen.latency_ms:.0f} ms, limit {expect.max_latency_ms:.0f} ms")
        )
    return failures


def _check_cites(expect: Expect, seen: Observation) -> list[Failure]:
    cited = set(seen.cited)
    shown = ", ".join(seen.cited) or "nothing"
    out = []
    if expect.cites_any and not cited & set(expect.cites_any):
        out.append(Failure("cites", f"cites none of {_quote(expect.cites_any)}; cited {shown}"))
    lacking = [d for d in expect.cites_all if d not in cited]
    if lacking:
        out.append(Failure("cites", f"does not cite {_quote(lacking)}; cited {shown}"))
    forbidden = [d for d in expect.cites_none if d in cited]
    if forbidden:
        out.append(Failure("cites", f"must not cite {_quote(forbidden)}"))
    return out


def _check_handoff(expect: Expect, seen: Observation) -> list[Failure]:
    if expect.handoff is None:
        return []
    if seen.handed_off != expect.handoff:
        want = "a handoff to a person" if expect.handoff else "no handoff"
        return [Failure("handoff", f"expected {want}; decision was {seen.decision!r}")]
    if expect.handoff_team is not None and fold(seen.handoff_team or "") != fold(expect.handoff_team):
        return [Failure("handoff", f"expected team {expect.handoff_team!r}, got {seen.handoff_team!r}")]
    return []


def _same(expected: Any, actual: Any) -> bool:
    """Expected arguments are a subset of the actual ones; text compares case-, accent- and space-insensitively."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and _same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return normalise(expected) == normalise(actual) or _digits(expected) == _digits(actual) != ""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return bool(expected == actual)


def _digits(value: str) -> str:
    # A CPF or a protocol number may be written with or without punctuation; only all-digit-like text counts.
    return re.sub(r"[\s.\-/]", "", value) if re.fullmatch(r"[\d\s.\-/]+", value) else ""


def _fits(expected: ExpectedCall, call: Mapping[str, Any]) -> bool:
    if call.get("name") != expected.name or not _same(expected.arguments, call.get("arguments") or {}):
        return False
    return expected.ok is None or bool(call.get("ok")) == expected.ok


def match_tool_calls(expect: ToolCallsExpectation, calls: Sequence[Mapping[str, Any]]) -> ToolMatch:
    """Match expected calls to distinct calls made: as a subsequence when ordered, as a bipartite match otherwise."""
    assignment: dict[int, int] = {}  # expected index -> call index
    if expect.ordered:
        j = 0
        for i, exp in enumerate(expect.calls):
            while j < len(calls) and not _fits(exp, calls[j]):
                j += 1
            if j == len(calls):
                break
            assignment[i] = j
            j += 1
    else:
        owner: dict[int, int] = {}  # call index -> expected index

        def augment(i: int, visited: set[int]) -> bool:
            for j, call in enumerate(calls):
                if j in visited or not _fits(expect.calls[i], call):
                    continue
                visited.add(j)
                if j not in owner or augment(owner[j], visited):
                    owner[j] = i
                    return True
            return False

        for i in range(len(expect.calls)):
            augment(i, set())
        assignment = {i: j for j, i in owner.items()}
    used = set(assignment.values())
    return ToolMatch(
        matched=len(assignment),
        expected=len(expect.calls),
        called=len(calls),
        missing=[c for i, c in enumerate(expect.calls) if i not in assignment],
        unexpected=[c for j, c in enumerate(calls) if j not in used],
    )


def _quote(items: Sequence[str]) -> str:
    return ", ".join(repr(s) for s in items)


def _call_repr(name: str, arguments: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"{name}({args})"

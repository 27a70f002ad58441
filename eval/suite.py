"""Evaluation suites: YAML files checked against eval/schema/suite.schema.json, every problem named by its line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


class SuiteError(ValueError):
    """A suite file that cannot be used; lists every problem found, each with its line."""

    def __init__(self, path: Path | str, problems: Sequence[Problem]) -> None:
        self.path = str(path)
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{self.path}:{p.line}: {p.message}" if self.path else p.message for p in self.problems)


@dataclass(frozen=True)
class ExpectedCall:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    ok: bool | None = None


@dataclass(frozen=True)
class ToolCallsExpectation:
    calls: tuple[ExpectedCall, ...]
    ordered: bool = False
    exclusive: bool = False


@dataclass(frozen=True)
class Expect:
    cites_any: tuple[str, ...] = ()
    cites_all: tuple[str, ...] = ()
    cites_none: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    contains_any: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    abstains: bool | None = None
    route: str | None = None
    tool_calls: ToolCallsExpectation | None = None
    handoff: bool | None = None
    handoff_team: str | None = None
    language: str | None = None
    max_latency_ms: float | None = None

    @property
    def empty(self) -> bool:
        return self == Expect()


@dataclass(frozen=True)
class Turn:
    user: str
    channel: str
    language: str | None
    expect: Expect
    line: int


@dataclass(frozen=True)
class Case:
    id: str
    turns: tuple[Turn, ...]
    tags: tuple[str, ...] = ()
    description: str = ""
    citizen: Mapping[str, str] | None = None
    line: int = 0

    @property
    def needs_seed(self) -> bool:
        return self.citizen is not None or any(t.expect.tool_calls is not None for t in self.turns)


@dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[Case, ...]
    description: str = ""
    path: str = ""
    seed: bool = False


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    raw = resources.files("eval").joinpath("schema/suite.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def load_suite(path: Path | str) -> Suite:
    """Read and validate a suite file; raise SuiteError naming the line of every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(path, [Problem(0, f"cannot read suite: {exc}")]) from exc
    return parse_suite(text, path)


def parse_suite(text: str, path: Path | str = "<suite>") -> Suite:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise SuiteError(path, [Problem(line, f"invalid YAML: {exc.problem or exc}")]) from exc
    if node is None:
        raise SuiteError(path, [Problem(1, "the suite is empty")])
    lines: dict[Path_, int] = {}
    problems = list(_index_lines(node, (), lines))
    data = yaml.safe_load(text)
    if not problems:
        problems = [p for e in _validator().iter_errors(data) for p in _problem(e, lines)]
    if not problems:
        problems = _duplicate_case_ids(data, lines)
    if problems:
        raise SuiteError(path, problems)
    return _build(data, lines, str(path))


def load_suites(paths: Iterable[Path | str]) -> list[Suite]:
    """Load several suites; a directory stands for every *.yaml in it. All errors are reported together."""
    suites: list[Suite] = []
    errors: list[str] = []
    for p in _expand(paths):
        try:
            suites.append(load_suite(p))
        except SuiteError as exc:
            errors.append(str(exc))
    names = [s.name for s in suites]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"suite name(s) used more than once: {', '.join(dupes)}")
    if errors:
        raise SuiteError("", [Problem(0, e) for e in errors])
    return suites


def _expand(paths: Iterable[Path | str]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(p.glob("*.yaml"))
        else:
            yield p


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Iterator[Problem]:
    """Map every key and item path to its 1-based line, and report duplicate keys (PyYAML keeps the last)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                yield Problem(line, f"duplicate key {key!r} (first on line {seen[key]})")
            seen[key] = line
            yield from _index_lines(value_node, (*path, key), lines)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _index_lines(item, (*path, i), lines)


def _where(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "suite"


def _line(path: Sequence[str | int], lines: Mapping[Path_, int]) -> int:
    p = tuple(path)
    while p and p not in lines:
        p = p[:-1]
    return lines.get(p, 1)


def _problem(error: ValidationError, lines: Mapping[Path_, int]) -> list[Problem]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {})
        extra = [k for k in error.instance if k not in allowed]
        return [
            Problem(
                _line([*path, k], lines),
                f"unknown key {k!r} in {_where(path)} (allowed: {', '.join(allowed)})",
            )
            for k in extra
        ]
    if error.validator == "oneOf" and error.context:
        # The branch that got furthest explains the problem best (e.g. handoff: {teem: x}).
        best = max(error.context, key=lambda e: len(list(e.absolute_path)))
        if list(best.absolute_path) != path:
            return _problem(best, lines)
        message = f"{_where(path)}: must be true, false or {{team: NAME}}, got {error.instance!r}"
        return [Problem(_line(path, lines), message)]
    return [Problem(_line(path, lines), f"{_where(path)}: {error.message}")]


def _duplicate_case_ids(data: Mapping[str, Any], lines: Mapping[Path_, int]) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    for i, case in enumerate(data["cases"]):
        line = _line(["cases", i, "id"], lines)
        if case["id"] in first:
            problems.append(Problem(line, f"case id {case['id']!r} is already used on line {first[case['id']]}"))
        first.setdefault(case["id"], line)
    return problems


def _merge_expect(default: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    return {**default, **own}


def _expect(raw: Mapping[str, Any]) -> Expect:
    cites = raw.get("cites") or {}
    handoff = raw.get("handoff")
    tools = raw.get("tool_calls")
    return Expect(
        cites_any=tuple(cites.get("any", ())),
        cites_all=tuple(cites.get("all", ())),
        cites_none=tuple(cites.get("none", ())),
        contains=tuple(raw.get("contains", ())),
        contains_any=tuple(raw.get("contains_any", ())),
        not_contains=tuple(raw.get("not_contains", ())),
        abstains=raw.get("abstains"),
        route=raw.get("route"),
        tool_calls=None
        if tools is None
        else ToolCallsExpectation(
            calls=tuple(
                ExpectedCall(c["name"], dict(c.get("arguments") or {}), c.get("ok")) for c in tools.get("calls", [])
            ),
            ordered=bool(tools.get("ordered", False)),
            exclusive=bool(tools.get("exclusive", False)),
        ),
        handoff=True if isinstance(handoff, dict) else handoff,
        handoff_team=handoff.get("team") if isinstance(handoff, dict) else None,
        language=raw.get("language"),
        max_latency_ms=raw.get("max_latency_ms"),
    )


def _build(data: Mapping[str, Any], lines: Mapping[Path_, int], path: str) -> Suite:
    defaults = data.get("defaults") or {}
    cases = []
    for i, raw in enumerate(data["cases"]):
        channel = raw.get("channel") or defaults.get("channel") or "web"
        language = raw.get("language") or defaults.get("language")
        turns = tuple(
            Turn(
                user=t["user"],
                channel=t.get("channel") or channel,
                language=t.get("language") or language,
                expect=_expect(_merge_expect(defaults.get("expect") or {}, t.get("expect") or {})),
                line=_line(["cases", i, "turns", j], lines),
            )
            for j, t in enumerate(raw["turns"])
        )
        tags = tuple(dict.fromkeys([*raw.get("tags", ()), *defaults.get("tags", ())]))
        citizen = raw.get("citizen") or defaults.get("citizen")
        cases.append(
            Case(
                id=raw["id"],
                turns=turns,
                tags=tags,
                description=raw.get("description", ""),
                citizen={k: str(v) for k, v in citizen.items()} if citizen else None,
                line=_line(["cases", i], lines),
            )
        )
    seed = data.get("seed")
    return Suite(
        name=data["suite"],
        cases=tuple(cases),
        description=data.get("description", ""),
        path=path,
        seed=any(c.needs_seed for c in cases) if seed is None else bool(seed),
    )

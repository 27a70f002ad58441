"""The API fuzzed from its own OpenAPI document with schemathesis, against the running app, by an anonymous caller
and by a signed-in administrator. No answer may be a server error, and every answer must be one the document
declares: its status code, its content type and its body's schema.

Each operation gets a few valid and a few invalid examples in CI. ATENDE_FUZZ_EXAMPLES raises that for the
longer run recorded in docs/decisions/0041-security-suite.md; ATENDE_FUZZ_SEED picks another seed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.accounts.roles import Role

from .conftest import Citizen, LiveApp, live_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = int(os.environ.get("ATENDE_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("ATENDE_FUZZ_SEED", "41"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written to the repository
    derandomize=False,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: earlier examples change the server's state
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Report:
    operations: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self, persona: str, started: float) -> str:
        return (
            f"fuzz as {persona}: {self.operations} operations, {self.examples} examples "
            f"({EXAMPLES} per operation and mode, seed {SEED}), {len(self.failures)} failing, "
            f"{time.monotonic() - started:.1f} s"
        )


@pytest.fixture(scope="module", autouse=True)
def _hypothesis_files_in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Hypothesis caches Unicode tables and source constants under ./.hypothesis: not in the repository.
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory, "fuzz")


@pytest.fixture(scope="module")
def api_schema(live: LiveApp) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def fuzz(api_schema: schemathesis.BaseSchema, call: Callable[[Case], None]) -> Report:
    """Every operation, with valid then invalid data; the first failing example of each is kept."""
    report = Report()
    for result in api_schema.get_all_operations():
        if not isinstance(result, Ok):
            report.failures.append(f"unreadable operation: {result.err()}")
            continue
        operation = result.ok()
        report.operations += 1
        modes = (
            [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negatable(operation) else [GenerationMode.POSITIVE]
        )
        for mode in modes:

            @SETTINGS
            @hypothesis.seed(SEED)
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Case) -> None:
                report.examples += 1
                call(bounded(case))

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing in this operation can be made invalid
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports its checks as a group
                report.failures.append(f"{operation.label} ({mode.value}): {exc}")
    return report


PLAIN_TEXT = ({"type": "string"}, {"anyOf": [{"type": "string"}, {"type": "null"}]})


def negatable(operation: APIOperation) -> bool:
    """Whether invalid input exists: a body, or a parameter more constrained than any text. (Hypothesis would
    search a long time for a URL that is not a string, and give up.)"""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for parameter in raw.get("parameters", []):
        constraints = {k: v for k, v in parameter.get("schema", {}).items() if k not in ("title", "description")}
        if constraints not in PLAIN_TEXT:
            return True
    return False


def bounded(case: Case) -> Case:
    """The console's event stream stays open for `wait` seconds: fuzzing it must not wait."""
    if case.path == "/api/console/events":
        case.query = {**(case.query or {}), "wait": 0}
    return case


@pytest.fixture(scope="module")
def conversations(live: LiveApp) -> list[str]:
    """Conversations that exist: a random id only ever reaches "not found", these reach the work behind it."""
    waiting = [Citizen(live).waiting_for_a_person() for _ in range(3)]
    return [*waiting, Citizen(live).start()]


def existing(case: Case, conversations: list[str]) -> Case:
    """Half of the valid conversation ids the fuzzer makes up become ones that exist (which one, and whether,
    follows from the made-up id, so a seed still replays the same run)."""
    made_up = (case.path_parameters or {}).get("conversation_id")
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if isinstance(made_up, str) and positive and len(made_up) % 2 == 0:
        chosen = conversations[len(made_up) % len(conversations)]
        case.path_parameters = {**(case.path_parameters or {}), "conversation_id": chosen}
    return case


@pytest.mark.parametrize("persona", ["anonymous", "admin", "supervisor"])
def test_the_fuzzed_api_gives_only_documented_answers_and_never_a_server_error(
    persona: Role | Literal["anonymous"], live: LiveApp, api_schema: schemathesis.BaseSchema, conversations: list[str]
) -> None:
    started = time.monotonic()
    member = None if persona == "anonymous" else live.user(persona, team=None if persona == "admin" else "atendimento")

    def call(case: Case) -> None:
        existing(case, conversations)
        if member is None:
            case.call_and_validate(checks=CHECKS)
            return
        if (case.path_parameters or {}).get("user_id") == member.id:
            # Only the caller's own account would lock the rest of the run out (a reset password, say).
            case.path_parameters = {**(case.path_parameters or {}), "user_id": member.id + 1}
        # A fresh session each time: the fuzzer may well sign the previous one out.
        case.call_and_validate(headers=live.signed_in(member), checks=CHECKS)

    report = fuzz(api_schema, call)

    print(report.summary(persona, started))
    assert not report.failures, "\n\n".join(report.failures)

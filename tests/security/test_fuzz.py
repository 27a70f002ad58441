"""The API fuzzed from its own OpenAPI document with schemathesis, against the running app, by an anonymous caller
and by a signed-in administrator. No answer may be a server error, and every answer must be one the document
declares: its status code, its content type and its body's schema.

Each operation gets a few valid and a few invalid examples in CI. ATENDE_FUZZ_EXAMPLES raises that for the
longer run recorded in docs/decisions/0041-security-suite.md; ATENDE_FUZZ_SEED picks another seed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import LiveApp

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


TIMES: list[tuple[float, str]] = []


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
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negatable(operation) else [GenerationMode.POSITIVE]:
            t0 = time.monotonic()

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
            finally:
                TIMES.append((time.monotonic() - t0, f"{operation.label} {mode.value}"))
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


def test_an_anonymous_caller_gets_only_documented_answers_and_no_server_error(
    live: LiveApp, api_schema: schemathesis.BaseSchema
) -> None:
    started = time.monotonic()

    report = fuzz(api_schema, lambda case: case.call_and_validate(checks=CHECKS))

    print(report.summary("anonymous", started))
    print(sorted(TIMES)[-15:])
    assert not report.failures, "\n\n".join(report.failures)


def test_an_administrator_gets_only_documented_answers_and_no_server_error(
    live: LiveApp, api_schema: schemathesis.BaseSchema
) -> None:
    admin = live.user("admin")
    started = time.monotonic()

    def call(case: Case) -> None:
        if (case.path_parameters or {}).get("user_id") == admin.id:
            # Only the administrator's own account would lock the rest of the run out (a reset password, say).
            case.path_parameters = {**(case.path_parameters or {}), "user_id": admin.id + 1}
        # A fresh session each time: the fuzzer may well sign the previous one out.
        case.call_and_validate(headers=live.signed_in(admin), checks=CHECKS)

    report = fuzz(api_schema, call)

    print(report.summary("administrator", started))
    assert not report.failures, "\n\n".join(report.failures)

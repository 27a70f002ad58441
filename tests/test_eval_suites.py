"""Every committed suite runs through `atende eval run` with the scripted model: a suite added later joins by itself.

The scripted model cannot pick tools or write good answers, so this checks that each suite loads, seeds what it
needs, runs every turn to the end and is scored in a written report, not that its cases pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import command_line_env
from typer.testing import CliRunner

from atende import cli
from eval.suite import load_suites

ROOT = Path(__file__).resolve().parent.parent
SUITES = sorted((ROOT / "eval" / "suites").glob("*.yaml"))


@pytest.fixture
def eval_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment `atende eval run` reads, with the hashing embedder so a suite takes seconds."""
    command_line_env(monkeypatch, tmp_path, ATENDE_KNOWLEDGE_DIR=str(ROOT / "knowledge"))
    return tmp_path


def test_the_suites_folder_is_found_and_holds_the_tool_suites() -> None:
    assert {"tools.yaml", "tools-heldout.yaml"} <= {p.name for p in SUITES}


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.name)
def test_every_suite_runs_to_the_end_through_atende_eval_run_and_writes_a_scored_report(
    path: Path, eval_env: Path
) -> None:
    (suite,) = load_suites([path])
    out = eval_env / "report"

    result = CliRunner().invoke(cli.app, ["eval", "run", str(path), "--model", "scripted", "--out", str(out)])

    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert (out / "report.html").is_file()
    # A suite that needs the domain (citizens, debts, slots) gets it seeded, with no error.
    assert (report["seeded"], report["seed_error"]) == (suite.seed, None)
    assert report["summary"]["n_cases"] == len(suite.cases)
    broken = {c["key"]: r["error"] for c in report["cases"] for r in c["runs"] if r["error"]}
    assert not broken, broken
    # Every turn was answered and judged against its expectations.
    for case, expected in zip(report["cases"], suite.cases, strict=True):
        (run,) = case["runs"]
        assert len(run["turns"]) == len(expected.turns), case["key"]
        assert all(isinstance(turn["failures"], list) and turn["answer"] for turn in run["turns"]), case["key"]

"""bench/answers.py end to end on a tiny suite and a tiny pt-qa-format set, with the scripted model."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from helpers import command_line_env

from bench.answers import COLUMNS, main
from eval.answering import available_answer_modes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "eval" / "data"

SUITE = """\
suite: tiny
cases:
  - id: iptu
    tags: [answerable]
    turns:
      - user: "perdi o boleto do IPTU, como tiro a segunda via?"
        expect:
          cites: {any: [iptu-segunda-via]}
          abstains: false
          contains_any: ["carnê do IPTU", "portal do contribuinte", "santaaurora.sp.gov.br/contribuinte"]
  - id: mongolia
    tags: [unanswerable]
    turns:
      - user: "qual a capital da Mongólia?"
        expect: {abstains: true}
  - id: hello
    tags: [smalltalk]
    turns:
      - user: "oi, bom dia!"
        expect: {route: smalltalk, abstains: false}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    command_line_env(monkeypatch, tmp_path)
    tiny = tmp_path / "pt-qa" / "tiny"
    tiny.mkdir(parents=True)
    shutil.copy(DATA / "sample_kb.jsonl", tiny / "kb.jsonl")
    shutil.copy(DATA / "sample_questions.jsonl", tiny / "questions.jsonl")
    (tmp_path / "tiny.yaml").write_text(textwrap.dedent(SUITE), encoding="utf-8")
    return tmp_path


def test_the_bench_writes_one_row_per_mode_and_model_plus_the_baseline_on_every_data_set(env: Path) -> None:
    results = main(
        [
            "--datasets",
            "foundation,tiny",
            "--models",
            "scripted",
            "--pt-qa",
            str(env / "pt-qa"),
            "--suite",
            str(env / "tiny.yaml"),
            "--knowledge",
            str(ROOT / "knowledge"),
            "--limit",
            "30",
            "--unanswerable-share",
            "0.3",
            "--out",
            str(env / "out.json"),
            "--md",
            str(env / "out.md"),
        ]
    )

    assert json.loads((env / "out.json").read_text(encoding="utf-8")) == results
    modes = available_answer_modes() or ()
    for name in ("foundation", "tiny"):
        rows = results["datasets"][name]["rows"]
        assert [r["responder"] for r in rows] == ["assistant"] * len(modes) + ["baseline"]
        assert [r["answer_mode"] for r in rows[:-1]] == list(modes)
        for row in rows:
            assert set(row["metrics"]) >= {key for key, _ in COLUMNS}
            assert row["metrics"]["first_words_ms"]["p50"] <= row["metrics"]["latency_ms"]["p95"]
    # Small talk is not an answer: two of the three cases are scored, one of them unanswerable.
    foundation = results["datasets"]["foundation"]["rows"]
    assert [(r["n_items"], r["n_unanswerable"]) for r in foundation] == [(2, 1)] * len(foundation)
    assistant = foundation[0]["metrics"]
    assert (assistant["answer_contains"], assistant["correct_abstention"]) == (1.0, 1.0)
    tiny = results["datasets"]["tiny"]["rows"]
    assert all(r["n_unanswerable"] > 0 and r["unanswerable"]["share"] == 0.3 for r in tiny)
    assert all(r["n_items"] <= 30 for r in tiny)

    table = (env / "out.md").read_text(encoding="utf-8")
    assert "## foundation" in table
    assert "## tiny" in table
    assert "| row | expected fact | token F1 |" in table
    assert table.count("| baseline: BM25 top document, 2 best sentences |") == 2
    assert "working slice" in table


def test_the_bench_refuses_an_answer_mode_this_build_does_not_have(env: Path) -> None:
    with pytest.raises(SystemExit, match="telepathic"):
        main(["--datasets", "tiny", "--models", "scripted", "--modes", "telepathic", "--pt-qa", str(env / "pt-qa")])

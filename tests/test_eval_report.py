"""Report aggregation, masking of personal data, the HTML page and the regression comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atende import cli
from eval.compare import compare
from eval.report import histogram, render_html, summarise, write_report

CPF = "529.982.247-25"


def turn(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "user": "pergunta",
        "answer": "resposta",
        "decision": "answered",
        "route": "knowledge",
        "reason": "",
        "confidence": 0.8,
        "language": "pt-BR",
        "handoff_team": None,
        "citations": [],
        "retrieved": [],
        "tool_calls": [],
        "latency_ms": 100.0,
        "timings_ms": {},
        "tokens": {"prompt": 10, "completion": 5},
        "faithfulness": None,
        "failures": [],
        "passed": True,
        "expect": {},
        "line": 3,
        "channel": "web",
    }
    return {**base, **kw}


def case(
    key: str, passes: int, repeat: int = 1, tags: tuple[str, ...] = ("t",), turns: list[Any] | None = None
) -> dict[str, Any]:
    runs = [{"passed": i < passes, "turns": turns or [turn()], "error": None} for i in range(repeat)]
    suite, cid = key.split("/")
    return {
        "key": key,
        "suite": suite,
        "id": cid,
        "tags": list(tags),
        "description": "",
        "line": 1,
        "passes": passes,
        "repeat": repeat,
        "passed": passes == repeat,
        "reason": "" if passes == repeat else "x",
        "runs": runs,
    }


def report(cases: list[dict[str, Any]], repeat: int = 1) -> dict[str, Any]:
    summary, by_tag = summarise(cases, repeat)
    return {
        "kind": "run",
        "created_at": "2026-11-01T00:00:00+00:00",
        "suites": [{"name": "s", "path": "s.yaml", "cases": len(cases)}],
        "model": "m",
        "embedder": "e",
        "repeat": repeat,
        "seed_error": None,
        "cases": cases,
        "summary": summary,
        "by_tag": by_tag,
    }


def test_summary_counts_retrieval_handoff_abstention_faithfulness_latency_and_tokens() -> None:
    turns = [
        turn(
            expect={"cites_any": ["a"]}, retrieved=[{"doc_id": "b"}, {"doc_id": "a"}], faithfulness=0.5, latency_ms=100
        ),
        turn(expect={"cites_any": ["a"]}, retrieved=[{"doc_id": "a"}], faithfulness=1.0, latency_ms=300),
        turn(expect={"handoff": True}, decision="handoff", route="human", latency_ms=10),
        turn(expect={"handoff": False, "abstains": True}, decision="abstained", latency_ms=20),
    ]
    summary, by_tag = summarise([case("s/a", 1, turns=turns), case("s/b", 0, tags=("t", "u"))], 1)

    assert summary["pass_rate"] == 0.5
    assert summary["retrieval"] == {"n_turns": 2, "recall@1": 0.5, "recall@3": 1.0, "mrr": 0.75}
    assert summary["handoff"] == {"n_turns": 2, "precision": 1.0, "recall": 1.0}
    assert summary["abstention"] == {"n_turns": 1, "precision": 1.0, "recall": 1.0}
    assert summary["faithfulness"] == 0.75
    assert summary["tokens"] == {"prompt": 50, "completion": 25, "total": 75}
    assert summary["latency_ms_by_route"]["human"] == {"p50": 10.0, "p95": 10.0}
    assert by_tag == {
        "t": {"cases": 2, "passed": 1, "pass_rate": 0.5},
        "u": {"cases": 1, "passed": 0, "pass_rate": 0.0},
    }


def test_reports_mask_personal_data_everywhere(tmp_path: Path) -> None:
    leaky = turn(
        user=f"meu cpf é {CPF}",
        answer="ligue (19) 99876-5432",
        tool_calls=[{"name": "citizen_verify", "arguments": {"cpf": CPF}, "ok": True, "error": None}],
        failures=[{"expectation": "contains", "reason": f"answer lacks '{CPF}'"}],
    )
    json_path, html_path = write_report(report([case("s/a", 0, turns=[leaky])]), tmp_path)

    assert html_path is not None
    for path in (json_path, html_path):
        body = path.read_text(encoding="utf-8")
        assert CPF not in body
        assert "99876-5432" not in body
        assert "52998224725" not in body
        assert "[CPF]" in body


def test_the_html_report_shows_summary_tags_latency_chart_and_each_transcript() -> None:
    t = turn(
        user="quanto custa a zona azul?",
        answer="Custa R$ 3,00 por hora [1].",
        citations=[{"doc_id": "zona-azul", "title": "Zona Azul", "section": "Preço"}],
        retrieved=[
            {
                "doc_id": "zona-azul",
                "chunk_id": "zona-azul#1",
                "title": "Zona Azul",
                "section": "Preço",
                "score": 0.91,
                "text": "R$ 3,00 por hora para automóveis",
            }
        ],
        tool_calls=[{"name": "protocol_list", "arguments": {}, "ok": True, "error": None}],
        failures=[{"expectation": "cites", "reason": "cites none of 'x'"}],
    )
    html = render_html(report([case("s/zona", 0, tags=("transito",), turns=[t]), case("s/ok", 1)]))

    assert "Relatório de avaliação" in html
    assert "Taxa de aprovação" in html
    assert "transito" in html
    assert "<svg" in html
    assert "quanto custa a zona azul?" in html
    assert "R$ 3,00 por hora para automóveis" in html
    assert "protocol_list" in html
    assert "cites none of" in html
    assert "zona-azul" in html


def _method(r1: float) -> dict[str, Any]:
    return {
        "recall@1": r1,
        "recall@5": 0.8,
        "recall@10": 0.9,
        "mrr@10": r1 + 0.05,
        "ndcg@10": 0.7,
        "latency_ms": {"p50": 1.0, "p95": 2.0},
    }


def test_the_retrieval_report_gets_a_page_with_the_methods_rank_bands_and_the_questions_it_missed(
    tmp_path: Path,
) -> None:
    retrieval = {
        "kind": "retrieval",
        "methods": {"atende": _method(0.5), "bm25": _method(0.4), "dense": _method(0.3)},
        "n_questions": 2,
        "n_documents": 2,
        "n_chunks": 3,
        "embedder": "e",
        "params": {"fusion": "convex", "dense_weight": 0.5, "candidates": 30},
        "latency_sample": 2,
        "skipped": {"unknown_doc": 1, "ids": ["q-stray"]},
        "timings_s": {"indexing": 1.0},
        "rows": [
            {"id": "q-hit", "question": "onde pago o iptu?", "doc_ids": ["iptu"], "atende": 1, "bm25": 2, "dense": 1},
            {"id": "q-miss", "question": f"meu cpf {CPF}", "doc_ids": ["cpf"], "atende": None, "bm25": 3, "dense": 7},
        ],
    }
    _, html_path = write_report(retrieval, tmp_path)

    assert html_path is not None
    html = html_path.read_text(encoding="utf-8")
    assert "q-miss" in html
    assert "q-hit" not in html  # ranked first by the project's retriever: not a miss
    assert "q-stray" in html
    assert "[CPF]" in html
    assert CPF not in html
    assert "fora dos 10 primeiros" in html


def test_the_answers_report_gets_a_page_with_every_answer_its_abstentions_and_the_latency_chart(tmp_path: Path) -> None:
    answers = {
        "kind": "answers",
        "metrics": {
            "answer_contains": 0.5,
            "token_f1": 0.4,
            "words_per_answer": {"mean": 4.0, "p50": 4.0},
            "abstained": 0.5,
            "correct_abstention": 1.0,
            "false_abstention": 0.0,
            "faithfulness": None,
            "first_words_ms": {"p50": 4.0, "p95": 8.0},
            "latency_ms": {"p50": 10.0, "p95": 20.0},
        },
        "n_questions": 3,
        "n_unanswerable": 1,
        "unanswerable": {"share": 0.2, "questions": 1, "dropped_documents": 1, "excluded_questions": 2},
        "model": "scripted",
        "faithfulness_scorer": "support",
        "rows": [
            {
                "id": "a1",
                "question": "quanto custa?",
                "expected": ["R$ 5,00"],
                "decision": "answered",
                "answer": "Custa R$ 5,00 [1].",
                "expects_abstention": False,
                "contains": True,
                "f1": 1.0,
                "words": 4,
                "faithfulness": 1.0,
                "first_words_ms": 4.0,
                "latency_ms": 10.0,
            },
            {
                "id": "a2",
                "question": "e o prazo?",
                "expected": ["30 dias"],
                "decision": "abstained",
                "answer": "Não encontrei.",
                "expects_abstention": False,
                "contains": False,
                "f1": 0.0,
                "words": None,
                "faithfulness": None,
                "first_words_ms": 20.0,
                "latency_ms": 20.0,
            },
            {
                "id": "a3",
                "question": "qual a capital da Mongólia?",
                "expected": ["Ulan Bator"],
                "expects_abstention": True,
                "decision": "abstained",
                "answer": "Não encontrei.",
                "contains": None,
                "f1": None,
                "words": None,
                "faithfulness": None,
                "first_words_ms": 8.0,
                "latency_ms": 8.0,
            },
        ],
    }
    _, html_path = write_report(answers, tmp_path)

    assert html_path is not None
    html = html_path.read_text(encoding="utf-8")
    assert "Custa R$ 5,00 [1]." in html
    assert "NÃO CONTÉM" in html
    assert "<svg" in html
    assert "30 dias" in html
    # The unanswerable question is judged on its abstention, and the page says how questions were made so.
    assert "SEM RESPOSTA NA BASE" in html
    assert "ABSTEVE-SE" in html
    assert "trechos de referência ficaram fora do índice" in html
    assert "Primeiras palavras" in html


def test_the_latency_histogram_puts_every_value_in_a_bin() -> None:
    bins = histogram([0, 5, 10, 10], bins=2)
    assert [b["count"] for b in bins] == [1, 3]
    assert histogram([]) == []


BASE = report([case("s/a", 1), case("s/b", 1), case("s/c", 0), case("s/gone", 1)])
NEW = report([case("s/a", 1), case("s/b", 0), case("s/c", 1), case("s/new", 1)])


def test_compare_lists_regressions_improvements_and_changed_cases() -> None:
    result = compare(BASE, NEW)
    assert [r["key"] for r in result.regressions] == ["s/b"]
    assert [r["key"] for r in result.improvements] == ["s/c"]
    assert result.added == ["s/new"]
    assert result.removed == ["s/gone"]
    assert result.ok


def test_no_regressions_fails_on_any_regressed_case_without_tolerance() -> None:
    assert not compare(BASE, NEW, no_regressions=True).ok
    assert "s/b" in compare(BASE, NEW, no_regressions=True).gate_failures[0]


def test_a_tolerance_allows_a_small_pass_rate_drop_but_not_a_larger_one() -> None:
    worse = report([case("s/a", 1), case("s/b", 0), case("s/c", 0), case("s/gone", 1)])  # 0.75 -> 0.5
    assert compare(BASE, worse, no_regressions=True, tolerance=0.25).ok
    failed = compare(BASE, worse, no_regressions=True, tolerance=0.2)
    assert not failed.ok
    assert "more than the tolerance 0.200" in failed.gate_failures[0]


def test_min_pass_rate_fails_below_the_threshold() -> None:
    assert compare(BASE, NEW, min_pass_rate=0.75).ok
    assert not compare(BASE, NEW, min_pass_rate=0.8).ok


def test_data_set_reports_compare_by_metric() -> None:
    base = {"kind": "retrieval", "methods": {"atende": {"recall@1": 0.8, "latency_ms": {"p50": 20}}}}
    new = {"kind": "retrieval", "methods": {"atende": {"recall@1": 0.7, "latency_ms": {"p50": 40}}}}
    result = compare(base, new, no_regressions=True, tolerance=0.05)
    assert not result.ok
    assert "atende.recall@1" in result.gate_failures[0]
    assert compare(base, new, no_regressions=True, tolerance=0.2).ok


def test_answer_reports_count_fewer_false_abstentions_and_shorter_answers_as_no_regression() -> None:
    def answers(false_abstention: float, words: float, correct: float) -> dict[str, Any]:
        metrics = {
            "false_abstention": false_abstention,
            "correct_abstention": correct,
            "words_per_answer": {"mean": words, "p50": words},
        }
        return {"kind": "answers", "metrics": metrics}

    assert compare(answers(0.3, 40, 0.5), answers(0.1, 20, 0.5), no_regressions=True).ok
    worse = compare(answers(0.1, 20, 0.5), answers(0.1, 20, 0.2), no_regressions=True)
    assert "correct_abstention" in worse.gate_failures[0]


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        ([], 0),
        (["--no-regressions"], 1),
        (["--min-pass-rate", "0.9"], 1),
        (["--min-pass-rate", "0.5"], 0),
        (["--no-regressions", "--tolerance", "0.3"], 0),
    ],
)
def test_atende_eval_compare_exits_non_zero_when_a_gate_fails(tmp_path: Path, flags: list[str], code: int) -> None:
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(BASE), encoding="utf-8")
    new.write_text(json.dumps(NEW), encoding="utf-8")

    result = CliRunner().invoke(cli.app, ["eval", "compare", str(base), str(new), *flags])

    assert result.exit_code == code, result.output
    assert "REGRESSION s/b" in result.stdout
    assert "IMPROVED   s/c" in result.stdout


def test_atende_eval_compare_rejects_an_unreadable_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["eval", "compare", str(bad), str(bad)])
    assert result.exit_code == 2
    assert "cannot read report" in result.output

"""Data-set modes on a tiny knowledge base with the hashing embedder: retrieval and answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import command_line_env
from typer.testing import CliRunner

from atende import cli
from atende.services import build_embedder, retrieval_params
from core.privacy import mask
from core.settings import Settings
from eval.datasets import (
    Answer,
    DatasetError,
    Question,
    evaluate_answers,
    evaluate_retrieval,
    ingest_kb,
    latency_sample,
    read_kb,
    read_questions,
)
from rag.testing import HashingEmbedder

DATA = Path(__file__).resolve().parent.parent / "eval" / "data"
METRIC_KEYS = {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_ms"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    command_line_env(monkeypatch, tmp_path)
    return tmp_path


def test_the_kb_goes_through_the_projects_loader_keeping_ids_titles_and_urls(tmp_path: Path) -> None:
    records = read_kb(DATA / "sample_kb.jsonl")
    docs = ingest_kb(records, tmp_path / "kb")
    assert [d.id for d in docs] == [r.id for r in records]
    assert docs[0].title == records[0].title
    assert docs[0].url == records[0].source
    assert "## Documentos" in docs[0].text or "## Prazo e valor" in docs[0].text


def test_retrieval_reports_the_projects_retriever_and_both_baselines_with_exactly_the_metric_keys(
    test_settings: Settings,
) -> None:
    records = read_kb(DATA / "sample_kb.jsonl")
    questions = read_questions(DATA / "sample_questions.jsonl")

    report = evaluate_retrieval(records, questions, build_embedder(test_settings), retrieval_params(test_settings))

    assert set(report["methods"]) == {"atende", "bm25", "dense"}
    for metrics in report["methods"].values():
        assert set(metrics) == METRIC_KEYS
        assert set(metrics["latency_ms"]) == {"p50", "p95"}
        assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 1
        assert metrics["mrr@10"] <= metrics["recall@10"]
    assert report["n_questions"] == len(questions) == len(report["rows"])
    assert report["methods"]["bm25"]["recall@10"] > 0.5


def test_retrieval_ranks_a_question_whose_words_only_one_document_has_first(
    test_settings: Settings, tmp_path: Path
) -> None:
    kb = tmp_path / "kb.jsonl"
    kb.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {
                    "id": "a",
                    "title": "Castração de cães",
                    "text": "A castração gratuita de cães e gatos é feita no canil.",
                    "source": "",
                },
                {
                    "id": "b",
                    "title": "Poda de árvores",
                    "text": "A poda de árvores na calçada é pedida pelo 156.",
                    "source": "",
                },
            ]
        ),
        encoding="utf-8",
    )
    q = tmp_path / "q.jsonl"
    q.write_text(
        json.dumps({"id": "1", "question": "castração do gato", "answers": ["canil"], "doc_id": "a"}), encoding="utf-8"
    )
    report = evaluate_retrieval(
        read_kb(kb), read_questions(q), build_embedder(test_settings), retrieval_params(test_settings)
    )
    assert report["rows"][0] == {
        "id": "1",
        "question": "castração do gato",
        "doc_ids": ["a"],
        "atende": 1,
        "bm25": 1,
        "dense": 1,
    }
    assert report["methods"]["atende"]["mrr@10"] == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id": "a", "title": "t", "text": "x"}\n{"id": "a", "title": "t", "text": "y"}',
            ":2: duplicate id 'a' (first on line 1)",
        ),
        ('{"id": "a", "title": "t"}', ":1: 'text' must be non-empty text"),
        ('{"id": "a#1", "title": "t", "text": "x"}', ":1: id 'a#1' must not contain '#'"),
        ("\n{oops", ":2: not valid JSON"),
    ],
)
def test_a_bad_kb_line_is_reported_with_its_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text(line, encoding="utf-8")
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_kb(path)


def test_a_question_about_a_document_not_in_the_kb_is_left_out_counted_and_warned_about(
    test_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = read_kb(DATA / "sample_kb.jsonl")
    good = read_questions(DATA / "sample_questions.jsonl")[:3]
    stray = Question("stray", "onde fica a praia?", (), ("no-such-doc",))

    report = evaluate_retrieval(
        records, [good[0], stray, *good[1:]], build_embedder(test_settings), retrieval_params(test_settings)
    )

    assert report["n_questions"] == 3
    assert [r["id"] for r in report["rows"]] == [q.id for q in good]
    assert report["skipped"] == {"unknown_doc": 1, "ids": ["stray"]}
    assert "1 of 4 questions expect a doc_id that is not in the knowledge base" in caplog.text


def test_retrieval_refuses_a_question_set_none_of_whose_documents_is_in_the_kb(env: Path) -> None:
    (env / "q.jsonl").write_text('{"id": "1", "question": "x?", "answers": [], "doc_id": "zzz"}\n', encoding="utf-8")
    kb = str(DATA / "sample_kb.jsonl")
    result = CliRunner().invoke(cli.app, ["eval", "retrieval", "--kb", kb, "--questions", "q.jsonl"])
    assert result.exit_code == 2
    assert "no question expects a document that is in" in result.output


def test_queries_are_embedded_once_each_in_batches_except_the_sample_timed_one_by_one(
    test_settings: Settings,
) -> None:
    calls: list[list[str]] = []

    class Spy(HashingEmbedder):
        def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
            calls.append(list(texts))
            return super().embed_queries(texts)

    records = read_kb(DATA / "sample_kb.jsonl")
    questions = read_questions(DATA / "sample_questions.jsonl")
    params = retrieval_params(test_settings)
    baseline = evaluate_retrieval(records, questions, build_embedder(test_settings), params)
    report = evaluate_retrieval(records, questions, Spy(), params, latency_sample_size=4)

    embedded = [text for call in calls for text in call]
    assert sorted(embedded) == sorted({mask(q.question) for q in questions})
    assert sum(len(call) == 1 for call in calls) == report["latency_sample"] == 4
    assert max(len(call) for call in calls) > 1
    assert report["rows"] == baseline["rows"]  # batching changes the cost, not a single rank


def test_single_query_timing_stops_at_its_time_budget_and_every_question_is_still_ranked(
    test_settings: Settings,
) -> None:
    calls: list[list[str]] = []

    class Spy(HashingEmbedder):
        def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
            calls.append(list(texts))
            return super().embed_queries(texts)

    records = read_kb(DATA / "sample_kb.jsonl")
    questions = read_questions(DATA / "sample_questions.jsonl")
    report = evaluate_retrieval(
        records, questions, Spy(), retrieval_params(test_settings), latency_sample_size=10, latency_budget_s=0.0
    )

    assert report["latency_sample"] == 1
    assert [len(call) for call in calls].count(1) == 1
    assert len(report["rows"]) == len(questions)
    assert report["methods"]["atende"]["latency_ms"]["p50"] > 0


def test_the_latency_sample_is_spread_over_the_whole_question_set() -> None:
    assert latency_sample(10, 4) == {0, 2, 5, 8}
    assert latency_sample(3, 4) == {0, 1, 2}


def test_answer_metrics_count_abstentions_as_empty_answers() -> None:
    questions = [
        Question("1", "q", ("30 dias úteis",), ("a",)),
        Question("2", "q", ("gratuito",), ("a",)),
        Question("3", "q", ("R$ 15,00",), ("a",)),
    ]
    replies = {
        "1": Answer("O prazo é de 30 dias úteis [1].", "answered", ["O prazo é de 30 dias úteis."], 100.0, 40.0),
        "2": Answer("O serviço custa R$ 10,00.", "answered", ["O serviço é gratuito."], 300.0, 60.0),
        "3": Answer("R$ 15,00 — desculpe, não encontrei.", "abstained", [], 50.0, 50.0),
    }
    report = evaluate_answers(questions, lambda q: replies[q.id])
    m = report["metrics"]
    assert m["answer_contains"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["abstained"] == pytest.approx(1 / 3, abs=1e-4)
    # "o prazo e de 30 dias uteis" against "30 dias uteis": p = 3/7, r = 1 (the citation marker is not a word)
    assert m["token_f1"] == pytest.approx((2 * (3 / 7) / (1 + 3 / 7)) / 3, abs=1e-4)
    assert m["words_per_answer"] == {"mean": 6.0, "p50": 6.0}  # the two answered replies, 7 and 5 words
    assert m["latency_ms"] == {"p50": 100.0, "p95": 280.0}
    assert m["first_words_ms"] == {"p50": 50.0, "p95": 59.0}
    assert m["faithfulness"] is None
    # Every question was answerable: there is no unanswerable one to judge abstention on.
    assert m["correct_abstention"] is None
    assert m["false_abstention"] == pytest.approx(1 / 3, abs=1e-4)
    assert set(m) == {
        "answer_contains",
        "token_f1",
        "words_per_answer",
        "abstained",
        "correct_abstention",
        "false_abstention",
        "faithfulness",
        "first_words_ms",
        "latency_ms",
    }


def test_atende_eval_retrieval_writes_the_report_and_prints_a_table(env: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        [
            "eval",
            "retrieval",
            "--kb",
            str(DATA / "sample_kb.jsonl"),
            "--questions",
            str(DATA / "sample_questions.jsonl"),
            "--out",
            "r",
            "--limit",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((env / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["n_questions"] == 10
    assert set(report["methods"]) == {"atende", "bm25", "dense"}
    assert "atende" in result.stdout
    assert "recall@1" in result.stdout
    assert "recall@1" in (env / "r" / "report.html").read_text(encoding="utf-8")


def test_atende_eval_answers_answers_through_the_assistant(env: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        [
            "eval",
            "answers",
            "--kb",
            str(DATA / "sample_kb.jsonl"),
            "--questions",
            str(DATA / "sample_questions.jsonl"),
            "--limit",
            "6",
            "--model",
            "scripted",
            "--out",
            "a",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((env / "a" / "report.json").read_text(encoding="utf-8"))
    assert report["n_questions"] == 6
    assert report["slice"] == "working"
    assert report["metrics"]["abstained"] < 1.0
    assert report["metrics"]["first_words_ms"]["p50"] <= report["metrics"]["latency_ms"]["p50"]
    assert "first words p50 / p95 ms" in result.stdout
    assert (env / "a" / "report.html").is_file()
    # Evaluation leaves the data directory alone; test mode may only have generated its keys there.
    assert {p.name for p in (env / "var").glob("*")} <= {"keys.env"}


def test_atende_eval_retrieval_names_a_bad_line(env: Path) -> None:
    (env / "kb.jsonl").write_text('{"id": "a", "title": "t", "text": "x"}\nnot json\n', encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["eval", "retrieval", "--kb", "kb.jsonl", "--questions", "kb.jsonl"])
    assert result.exit_code == 2
    assert "kb.jsonl:2: not valid JSON" in result.output


def test_convex_fusion_rescales_each_list_per_query_so_no_retrievers_scale_dominates() -> None:
    from rag.retriever import RetrievalParams, fuse
    from rag.types import Chunk, ScoredChunk

    def hit(cid: str, score: float) -> ScoredChunk:
        return ScoredChunk(Chunk(cid, cid, cid, "", "text"), score)

    # BM25 scores are large and spread out, cosines small and close: only their order within a list counts.
    dense = [hit("a", 0.86), hit("b", 0.85), hit("c", 0.80)]
    lexical = [hit("b", 40.0), hit("c", 39.0), hit("d", 5.0)]
    ranked = fuse(dense, lexical, RetrievalParams(fusion="convex", dense_weight=0.5))

    scores = {s.chunk.id: round(s.score, 3) for s in ranked}
    assert scores == {"b": round(0.5 * (0.05 / 0.06) + 0.5, 3), "c": round(0.5 * 34 / 35, 3), "a": 0.5, "d": 0.0}
    assert [s.chunk.id for s in ranked] == ["b", "a", "c", "d"]
    # The raw scores still feed the abstention confidence.
    assert ranked[0].dense == 0.85
    assert ranked[0].lexical == 40.0

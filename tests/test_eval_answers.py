"""The answers mode's harness: slices, unanswerable questions, the extractive floor and first-words timing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from assistant.testing import FailingChatModel
from atende.services import build_services
from core.settings import Settings
from eval.answering import (
    BASELINE,
    ExtractiveBaseline,
    answer_mode_of,
    available_answer_modes,
    run_answers,
    stream_responder,
    suite_report_rows,
    suite_row,
    with_answer_mode,
)
from eval.chat_models import scripted_model
from eval.datasets import (
    KbRecord,
    Question,
    answer_metrics,
    evaluate_answers,
    held_out,
    read_kb,
    read_questions,
    select_slice,
    unanswerable_split,
)
from eval.isolation import isolated_services
from rag.types import Document

DATA = Path(__file__).resolve().parent.parent / "eval" / "data"


def questions(n: int) -> list[Question]:
    # Two questions per passage, as when a passage answers several questions.
    return [Question(f"q{i}", f"pergunta {i}", ("x",), (f"d{i // 2}",)) for i in range(n)]


def test_the_working_and_held_out_slices_split_the_questions_by_the_pt_qa_hash_rule() -> None:
    qs = questions(200)
    working, heldout = select_slice(qs, "working"), select_slice(qs, "heldout")
    assert {q.id for q in working} | {q.id for q in heldout} == {q.id for q in qs}
    assert not {q.id for q in working} & {q.id for q in heldout}
    assert all(int(hashlib.sha256(q.id.encode()).hexdigest(), 16) % 10 < 2 for q in heldout)
    assert 20 <= len(heldout) <= 60
    assert select_slice(qs, "all") == qs
    assert held_out(heldout[0].id)
    assert not held_out(working[0].id)
    with pytest.raises(ValueError, match="slice"):
        select_slice(qs, "test")


def test_the_unanswerable_split_is_the_same_on_every_run_and_whatever_the_order() -> None:
    qs = questions(300)
    first = unanswerable_split(qs, 0.2)
    again = unanswerable_split(list(reversed(qs)), 0.2)
    assert {q.id for q in first.unanswerable} == {q.id for q in again.unanswerable}
    assert first.dropped_docs == again.dropped_docs
    assert 30 <= len(first.unanswerable) <= 90
    assert unanswerable_split(qs, 0.0).unanswerable == []


def test_unanswerable_questions_lose_all_their_gold_passages_and_their_passage_mates_are_excluded() -> None:
    qs = questions(300)
    split = unanswerable_split(qs, 0.2)
    chosen = {q.id for q in split.unanswerable}
    assert split.dropped_docs == {d for q in split.unanswerable for d in q.doc_ids}
    # Every question lands in exactly one group.
    groups = [{q.id for q in g} for g in (split.answerable, split.unanswerable, split.excluded)]
    assert sum(map(len, groups)) == len(qs)
    assert set().union(*groups) == {q.id for q in qs}
    # An answerable question still has its passage; a passage mate of an unanswerable one is excluded.
    assert not any(set(q.doc_ids) & split.dropped_docs for q in split.answerable)
    for i in range(0, 300, 2):
        pair = {f"q{i}", f"q{i + 1}"}
        excluded = pair - chosen if len(pair & chosen) == 1 else set()
        assert {q.id for q in split.excluded} & pair == excluded


def test_the_unanswerable_share_must_leave_some_question_answerable() -> None:
    with pytest.raises(ValueError, match="share"):
        unanswerable_split(questions(4), 1.0)


KB = [
    Document(
        "gatos",
        "Castração de gatos",
        "A prefeitura castra cães e gatos de graça.\n\n"
        "A castração de gatos é feita no Centro de Zoonoses, na Rua das Flores, 100.\n\n"
        "O tutor deve levar o gato em caixa de transporte.\n\n"
        "A castração de gatos e cães exige jejum de 8 horas.",
    ),
    Document("iptu", "IPTU", "O IPTU vence no dia 10. O carnê chega pelo correio em fevereiro."),
    Document("interno", "Castração: fila interna", "Gatos castração fila interna da equipe.", audience="internal"),
]


def test_the_baseline_answers_with_the_two_sentences_of_bm25s_top_document_sharing_most_stems() -> None:
    baseline = ExtractiveBaseline(KB)
    text, doc = baseline.answer("Onde é feita a castração de gatos? Precisa de jejum?")
    assert doc is not None
    assert doc.doc_id == "gatos"
    # "feita", "castração", "gatos" and "castração", "gatos", "jejum" (3 stems each) beat the other sentences.
    assert text == (
        "A castração de gatos é feita no Centro de Zoonoses, na Rua das Flores, 100. "
        "A castração de gatos e cães exige jejum de 8 horas."
    )


def test_the_baseline_never_reads_internal_documents_and_abstains_when_no_word_matches() -> None:
    baseline = ExtractiveBaseline(KB)
    _, doc = baseline.answer("fila interna da equipe")
    assert doc is None or doc.doc_id != "interno"
    got = baseline(Question("q", "qual a capital da Mongólia?", (), ()))
    assert (got.text, got.decision, got.contexts) == ("", "abstained", [])
    assert got.first_words_ms == got.latency_ms


def test_the_baseline_answer_is_timed_and_rests_on_its_document() -> None:
    got = ExtractiveBaseline(KB)(Question("q", "quando vence o IPTU?", (), ()))
    assert got.decision == "answered"
    assert got.text == "O IPTU vence no dia 10."
    assert "O IPTU vence no dia 10." in got.contexts[0]
    assert got.first_words_ms == got.latency_ms > 0


def test_the_answer_mode_goes_through_the_settings_and_an_unknown_one_is_refused(test_settings: Settings) -> None:
    assert with_answer_mode(test_settings, None) is test_settings
    for mode in available_answer_modes() or ():
        assert answer_mode_of(with_answer_mode(test_settings, mode)) == mode
    with pytest.raises(ValueError, match="not available"):
        with_answer_mode(test_settings, "telepathic")


def test_the_streaming_entry_point_gives_the_first_words_before_the_whole_answer(test_settings: Settings) -> None:
    with isolated_services(
        test_settings, build_services, model=scripted_model(10)
    ) as services:  # the sample knowledge base
        respond = stream_responder(services)
        answered = respond(Question("a", "perdi o boleto do IPTU, como tiro a segunda via?", (), ()))
        off_topic = respond(Question("b", "qual a capital da Mongólia?", (), ()))
    assert answered.decision == "answered", answered.text
    assert answered.contexts
    assert 0 < answered.first_words_ms < answered.latency_ms
    assert {"retrieve", "generate", "total"} <= set(answered.timings_ms)
    # Nothing streams before an abstention: the citizen's first words are the whole reply.
    assert off_topic.decision == "abstained"
    assert off_topic.first_words_ms == off_topic.latency_ms


def test_a_run_with_unanswerable_questions_scores_abstention_on_them_and_facts_on_the_rest(
    test_settings: Settings,
) -> None:
    records = read_kb(DATA / "sample_kb.jsonl")
    items = read_questions(DATA / "sample_questions.jsonl")
    split = unanswerable_split(items, 0.3)
    report = run_answers(records, items, test_settings, build_services, responder=BASELINE, unanswerable_share=0.3)

    assert report["n_questions"] == len(split.answerable) + len(split.unanswerable)
    assert report["n_unanswerable"] == len(split.unanswerable) > 0
    assert report["n_documents"] == len(records) - len(split.dropped_docs)
    assert report["unanswerable"]["excluded_questions"] == len(split.excluded)
    rows = {r["id"]: r for r in report["rows"]}
    assert not {q.id for q in split.excluded} & set(rows)
    for q in split.unanswerable:
        assert rows[q.id]["expects_abstention"]
        assert rows[q.id]["contains"] is None
    m = report["metrics"]
    assert m["correct_abstention"] is not None
    assert m["false_abstention"] is not None
    assert report["model"] == ExtractiveBaseline.name


def test_suite_turns_become_table_rows_with_the_suites_own_fact_matching() -> None:
    timing = {"faithfulness": None, "latency_ms": 30.0, "first_words_ms": 10.0}
    fact = suite_row(
        {"contains_any": ["Portal do Contribuinte"], "abstains": False},
        "Use o portal do contribuinte [1].",
        "answered",
        **timing,
    )
    assert fact is not None
    assert (fact["contains"], fact["expects_abstention"], fact["words"]) == (True, False, 5)
    refused = suite_row({"contains_any": ["30 dias"], "abstains": False}, "Não sei.", "abstained", **timing)
    assert refused is not None
    assert (refused["contains"], refused["f1"], refused["words"]) == (False, 0.0, None)
    # Small talk and the unchecked opening turns of a follow-up are not answers.
    assert suite_row({"route": "smalltalk", "abstains": False}, "Olá!", "answered", **timing) is None
    assert suite_row({}, "Custa R$ 5.", "answered", **timing) is None


def test_a_run_reports_checked_turns_and_counts_broken_runs() -> None:
    def turn(expect: dict[str, object], decision: str, answer: str = "Custa R$ 5,00 [1].") -> dict[str, object]:
        return {
            "expect": expect,
            "answer": answer,
            "decision": decision,
            "assistant_decision": decision,
            "faithfulness": 1.0 if decision == "answered" else None,
            "latency_ms": 100.0,
            "first_words_ms": 20.0,
        }

    report = {
        "cases": [
            {"runs": [{"error": None, "turns": [turn({"contains_any": ["R$ 5,00"], "abstains": False}, "answered")]}]},
            {
                "runs": [
                    {"error": None, "turns": [turn({}, "answered"), turn({"abstains": True}, "abstained", "Não sei.")]}
                ]
            },
            {"runs": [{"error": None, "turns": [turn({"abstains": True}, "answered")]}]},
            {"runs": [{"error": "turn 1 raised RuntimeError: boom", "turns": []}]},
        ]
    }
    rows, errors = suite_report_rows(report)
    assert (len(rows), errors) == (3, 1)
    m = answer_metrics(rows)
    assert m["answer_contains"] == 1.0
    assert m["correct_abstention"] == 0.5
    assert m["false_abstention"] == 0.0
    assert m["words_per_answer"] == {"mean": 3.0, "p50": 3.0}
    assert m["first_words_ms"] == {"p50": 20.0, "p95": 20.0}


def test_records_dropped_for_unanswerable_questions_never_reach_the_index(test_settings: Settings) -> None:
    # Two-digit numbers: one-letter words are no search terms.
    records = [KbRecord(f"d{i}", f"Título {i}", f"Texto número {i} sobre o assunto {i}.", "") for i in range(10, 50)]
    items = [Question(f"q{i}", f"assunto {i}?", (f"número {i}",), (f"d{i}",)) for i in range(10, 50)]
    split = unanswerable_split(items, 0.25)
    report = run_answers(records, items, test_settings, build_services, responder=BASELINE, unanswerable_share=0.25)
    rows = {r["id"]: r for r in report["rows"]}
    # Each answer is taken from a passage the index holds: never the dropped gold passage.
    for q in split.unanswerable:
        assert "número " + q.id[1:] + " " not in rows[q.id]["answer"] + " "


def test_a_model_failure_is_reported_apart_and_the_answer_still_comes_from_the_article(
    test_settings: Settings,
) -> None:
    settings = test_settings.model_copy(update={"answer_mode": "generative"})
    with isolated_services(settings, build_services, model=FailingChatModel("timed out")) as services:
        respond = stream_responder(services)
        report = evaluate_answers(
            [Question("a", "perdi o boleto do IPTU, como tiro a segunda via?", ("portal",), ("x",))], respond
        )
    assert report["rows"][0]["decision"] == "answered"
    assert report["rows"][0]["reason"] == "llm_error"
    assert report["n_llm_errors"] == 1

"""Metric arithmetic, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    abstention_rates,
    cohen_kappa,
    contains_answer,
    first_rank,
    latency_summary,
    mrr_at,
    ndcg_at,
    normalise_answer,
    pass_hat_k,
    percentile,
    precision_recall,
    recall_at,
    share,
    token_f1,
    word_count,
    words_summary,
)


def test_pass_hat_k_counts_a_task_only_when_all_k_runs_pass() -> None:
    # Three tasks run 3 times: passed 3, 2 and 0 times.
    successes = [3, 2, 0]
    assert pass_hat_k(successes, 3, 3) == pytest.approx(1 / 3)
    assert pass_hat_k(successes, 3, 1) == pytest.approx((1 + 2 / 3 + 0) / 3)
    # τ-bench's estimator: C(2,2)/C(3,2) = 1/3 for the task that passed twice.
    assert pass_hat_k(successes, 3, 2) == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_pass_hat_k_refuses_more_runs_than_were_made() -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        pass_hat_k([1], 1, 2)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([7], 95) == 7
    assert percentile([], 50) == 0.0


def test_rank_metrics_for_one_relevant_document_per_query() -> None:
    ranks = [1, 2, None, 10, 11]
    assert first_rank(["a", "b", "c"], {"c", "b"}) == 2
    assert first_rank(["a"], {"z"}) is None
    assert recall_at(ranks, 1) == pytest.approx(1 / 5)
    assert recall_at(ranks, 10) == pytest.approx(3 / 5)
    assert mrr_at(ranks, 10) == pytest.approx((1 + 1 / 2 + 1 / 10) / 5)
    assert ndcg_at(ranks, 10) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(11)) / 5)
    assert recall_at([], 5) == 0.0


def test_answer_normalisation_drops_case_accents_and_punctuation() -> None:
    assert normalise_answer("  Até 30 DIAS, úteis! ") == "ate 30 dias uteis"
    assert contains_answer("O prazo é de até 30 dias úteis.", ["30 dias úteis"])
    assert contains_answer("Custa R$ 3,00 por hora.", ["r$3,00"])  # punctuation is only a separator
    assert contains_answer("Custa R$ 3,00 por hora.", ["R$ 3,00"])
    assert not contains_answer("São 300 dias.", ["30"])  # whole words only
    assert not contains_answer("qualquer coisa", [])


def test_token_f1_takes_the_best_reference() -> None:
    assert token_f1("trinta dias uteis", ["30 dias úteis", "trinta dias úteis"]) == pytest.approx(1.0)
    # prediction "prazo de 30 dias" vs "30 dias uteis": 2 common, p = 2/4, r = 2/3
    assert token_f1("prazo de 30 dias", ["30 dias úteis"]) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert token_f1("", ["x"]) == 0.0


def test_cohen_kappa_is_one_for_perfect_and_zero_for_chance_agreement() -> None:
    assert cohen_kappa([True, False, True], [True, False, True]) == 1.0
    assert cohen_kappa([True, True, False, False], [True, False, True, False]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="equally long"):
        cohen_kappa([True], [])


def test_precision_and_recall_are_none_without_evidence() -> None:
    assert precision_recall(2, 4, 2) == {"precision": 0.5, "recall": 1.0}
    assert precision_recall(0, 0, 0) == {"precision": None, "recall": None}


def test_words_are_what_a_citizen_reads_without_citation_marks_or_bare_punctuation() -> None:
    assert word_count("O prazo é de 30 dias úteis [1].") == 7
    assert word_count("Custa R$ 15,00 — pague no Pix [2][3]") == 6
    assert word_count("") == 0


def test_words_per_answer_are_summarised_by_mean_and_median_and_nothing_when_nothing_was_answered() -> None:
    assert words_summary([4, 10, 7]) == {"mean": 7.0, "p50": 7.0}
    assert words_summary([1, 2, 3, 30]) == {"mean": 9.0, "p50": 2.5}
    assert words_summary([]) == {"mean": None, "p50": None}


def test_abstention_rates_count_each_kind_of_question_over_its_own_total() -> None:
    # (should abstain, did abstain): 3 unanswerable of which 2 abstained; 4 answerable of which 1 abstained.
    pairs = [(True, True), (True, False), (True, True), (False, False), (False, True), (False, False), (False, False)]
    assert abstention_rates(pairs) == {"correct_abstention": round(2 / 3, 4), "false_abstention": 0.25}


def test_an_abstention_rate_with_no_question_of_its_kind_is_unknown_not_zero() -> None:
    assert abstention_rates([(False, False), (False, True)]) == {"correct_abstention": None, "false_abstention": 0.5}
    assert share([]) is None


def test_latency_percentiles_interpolate_between_ranks() -> None:
    assert latency_summary([100.0, 200.0, 300.0, 400.0, 1000.0]) == {"p50": 300.0, "p95": 880.0}
    assert latency_summary([42.0]) == {"p50": 42.0, "p95": 42.0}

"""Metric arithmetic shared by the suite runner and the data-set modes."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

from rag.text import fold

# The retrieval mode's ranking metrics, in report and table order (document level, one relevant document).
RETRIEVAL_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation between closest ranks (NumPy's default method)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}


def pass_hat_k(successes: Sequence[int], trials: int, k: int) -> float:
    """τ-bench's pass^k: the chance that k i.i.d. runs of a task all succeed, averaged over tasks.

    With n trials of which c succeeded, a task contributes C(c, k) / C(n, k); for k = n this is 1 only when
    every run passed, and for k = 1 it is the plain success rate.
    """
    if not successes:
        return 0.0
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the number of trials ({trials}), got {k}")
    return sum(math.comb(c, k) / math.comb(trials, k) for c in successes) / len(successes)


def first_rank(ranked: Sequence[str], relevant: Sequence[str] | set[str]) -> int | None:
    """1-based rank of the first relevant item, or None when none is ranked."""
    wanted = set(relevant)
    for i, item in enumerate(ranked, start=1):
        if item in wanted:
            return i
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of queries whose relevant document is in the top k (one relevant document per query)."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def mrr_at(ranks: Sequence[int | None], k: int) -> float:
    return sum(1 / r for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def ndcg_at(ranks: Sequence[int | None], k: int) -> float:
    """nDCG@k with binary relevance and a single relevant document: the ideal DCG is 1."""
    return sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 0.0


def precision_recall(true_positives: int, predicted: int, actual: int) -> dict[str, float | None]:
    """None where the denominator is zero (nothing predicted / nothing expected): no evidence either way."""
    return {
        "precision": true_positives / predicted if predicted else None,
        "recall": true_positives / actual if actual else None,
    }


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}«»“”‘’–—…ºª°]")


def normalise_answer(text: str) -> str:
    """Lowercase, strip accents and punctuation, collapse spaces (SQuAD-style, plus accent folding)."""
    text = unicodedata.normalize("NFC", text)
    return " ".join(_PUNCT.sub(" ", fold(text)).split())


def contains_answer(prediction: str, answers: Sequence[str]) -> bool:
    pred = f" {normalise_answer(prediction)} "
    return any(f" {normalise_answer(a)} " in pred for a in answers if normalise_answer(a))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best token-overlap F1 between the prediction and any reference answer."""
    pred = normalise_answer(prediction).split()
    best = 0.0
    for answer in answers:
        ref = normalise_answer(answer).split()
        if not pred or not ref:
            continue
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            p, r = common / len(pred), common / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Agreement between two binary raters beyond chance."""
    if len(a) != len(b) or not a:
        raise ValueError("need two equally long, non-empty label lists")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


_CITATION_MARK = re.compile(r"\[\d{1,3}\]")


def word_count(text: str) -> int:
    """Words a citizen reads: blank-separated pieces holding a letter or digit; citation marks are not words."""
    return sum(1 for piece in _CITATION_MARK.sub(" ", text).split() if any(ch.isalnum() for ch in piece))


def words_summary(counts: Sequence[int]) -> dict[str, float | None]:
    """Mean and median words per answer; None when there was no answer to count."""
    if not counts:
        return {"mean": None, "p50": None}
    return {"mean": round(sum(counts) / len(counts), 1), "p50": round(percentile(counts, 50), 1)}


def share(hits: Sequence[bool]) -> float | None:
    """The share of true values; None when there is nothing to count (no evidence either way)."""
    return round(sum(hits) / len(hits), 4) if hits else None


def abstention_rates(pairs: Sequence[tuple[bool, bool]]) -> dict[str, float | None]:
    """From (should abstain, did abstain) pairs: abstentions on questions the knowledge base cannot answer
    (correct) and on questions it can answer (false), each over its own kind of question."""
    return {
        "correct_abstention": share([did for should, did in pairs if should]),
        "false_abstention": share([did for should, did in pairs if not should]),
    }

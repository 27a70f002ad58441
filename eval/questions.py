"""The foundation suite seen as retrieval questions: one target article (or none) per question.

Used to tune fusion and calibrate the abstention threshold (eval/tune_retrieval.py) and by the benchmarks;
the questions themselves live in eval/suites/foundation.yaml, in the suite format the runner uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.rewrite import rewrite_query
from core.privacy import mask
from eval.metrics import first_rank, mrr_at, percentile, recall_at
from eval.suite import load_suite
from rag.index import KnowledgeIndex
from rag.retriever import RetrievalParams, confidence, dedupe_documents
from rag.text import fold

SUITE = Path(__file__).parent / "suites" / "foundation.yaml"
__all__ = ["Question", "answer_contains", "calibrate_threshold", "load_questions", "percentile", "split"]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    doc_id: str | None
    expect: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    internal_doc_id: str | None = None

    @property
    def answerable(self) -> bool:
        return self.doc_id is not None

    @property
    def smalltalk(self) -> bool:
        return "smalltalk" in self.tags


def load_questions(path: Path = SUITE) -> list[Question]:
    """The last turn of each case is the question; earlier turns are its history."""
    out = []
    for case in load_suite(path).cases:
        *history, last = case.turns
        e = last.expect
        out.append(
            Question(
                id=case.id,
                question=last.user,
                doc_id=e.cites_any[0] if e.cites_any else None,
                expect=e.contains_any or e.contains,
                tags=case.tags,
                history=tuple(t.user for t in history),
                internal_doc_id=e.cites_none[0] if e.cites_none else None,
            )
        )
    return out


def split(questions: Sequence[Question]) -> tuple[list[Question], list[Question]]:
    """Tuning and held-back halves (by id parity), so calibrated numbers are also reported on unseen items."""
    tune = [q for q in questions if int(q.id.lstrip("q")) % 2 == 1]
    check = [q for q in questions if int(q.id.lstrip("q")) % 2 == 0]
    return tune, check


@dataclass
class RetrievalRow:
    question: Question
    query: str
    ranked_docs: list[str]
    confidence: float
    latency_ms: float


def run_retrieval(
    index: KnowledgeIndex, questions: Sequence[Question], params: RetrievalParams, k: int = 10
) -> list[RetrievalRow]:
    import time

    rows = []
    for q in questions:
        if q.smalltalk:
            continue
        query = mask(rewrite_query(q.question, list(q.history)))
        t0 = time.perf_counter()
        hits = index.retrieve(query, k * 3, ("public",), params)
        elapsed = (time.perf_counter() - t0) * 1000
        docs = [h.chunk.doc_id for h in dedupe_documents(hits)][:k]
        rows.append(RetrievalRow(q, query, docs, confidence(hits[0] if hits else None, params), elapsed))
    return rows


@dataclass
class RetrievalMetrics:
    n_answerable: int
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float
    correct_abstention: float
    false_abstention: float
    threshold: float
    by_tag: dict[str, float] = field(default_factory=dict)


def retrieval_metrics(rows: Sequence[RetrievalRow], threshold: float) -> RetrievalMetrics:
    answerable = [r for r in rows if r.question.answerable]
    unanswerable = [r for r in rows if not r.question.answerable]

    ranks = [first_rank(r.ranked_docs, [r.question.doc_id or ""]) for r in answerable]
    by_tag: dict[str, list[bool]] = {}
    for r, rk in zip(answerable, ranks, strict=True):
        for tag in r.question.tags:
            by_tag.setdefault(tag, []).append(rk is not None and rk <= 5)
    n = max(len(answerable), 1)
    return RetrievalMetrics(
        n_answerable=len(answerable),
        recall_at_1=recall_at(ranks, 1),
        recall_at_5=recall_at(ranks, 5),
        mrr_at_10=mrr_at(ranks, 10),
        correct_abstention=sum(r.confidence < threshold for r in unanswerable) / max(len(unanswerable), 1),
        false_abstention=sum(r.confidence < threshold for r in answerable) / n,
        threshold=threshold,
        by_tag={t: sum(v) / len(v) for t, v in sorted(by_tag.items()) if len(v) >= 3},
    )


def calibrate_threshold(rows: Sequence[RetrievalRow], max_false_abstention: float = 0.05) -> float:
    """The highest threshold whose false-abstention rate stays within the budget: abstain as much as is safe."""
    answerable = sorted(r.confidence for r in rows if r.question.answerable)
    if not answerable:
        return 0.0
    allowed = int(max_false_abstention * len(answerable))
    # Abstaining below the (allowed+1)-th lowest answerable confidence costs at most `allowed` false abstentions.
    return answerable[allowed] - 1e-6


def answer_contains(answer: str, expect: Sequence[str]) -> bool:
    folded = fold(answer)
    return any(fold(e) in folded for e in expect) if expect else True

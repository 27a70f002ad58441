"""The foundation question suite: retrieval quality, abstention calibration and end-to-end answers.

A small harness until the full evaluation runner (suites, reports, gates) lands; it drives the same
KnowledgeIndex and Assistant the channels use.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.rewrite import rewrite_query
from atende.privacy import mask
from rag.index import KnowledgeIndex
from rag.retriever import RetrievalParams, confidence, dedupe_documents
from rag.text import fold

SUITE = Path(__file__).parent / "data" / "foundation_questions.yaml"


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
    items: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Question(
            id=str(i["id"]),
            question=str(i["question"]),
            doc_id=i.get("doc_id"),
            expect=tuple(i.get("expect") or ()),
            tags=tuple(i.get("tags") or ()),
            history=tuple(i.get("history") or ()),
            internal_doc_id=i.get("internal_doc_id"),
        )
        for i in items
    ]


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

    def rank(r: RetrievalRow) -> int | None:
        return r.ranked_docs.index(r.question.doc_id) + 1 if r.question.doc_id in r.ranked_docs else None

    ranks = [rank(r) for r in answerable]
    by_tag: dict[str, list[bool]] = {}
    for r, rk in zip(answerable, ranks, strict=True):
        for tag in r.question.tags:
            by_tag.setdefault(tag, []).append(rk is not None and rk <= 5)
    n = max(len(answerable), 1)
    return RetrievalMetrics(
        n_answerable=len(answerable),
        recall_at_1=sum(1 for x in ranks if x == 1) / n,
        recall_at_5=sum(1 for x in ranks if x is not None and x <= 5) / n,
        mrr_at_10=sum(1 / x for x in ranks if x is not None and x <= 10) / n,
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


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(p) - 1]

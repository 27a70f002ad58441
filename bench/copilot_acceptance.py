"""Copilot acceptance proxy: how often the suggested reply cites the article a person chose for the question.

    python -m bench.copilot_acceptance [--out bench/copilot_results.json] [--limit N]

No log of agents' real choices exists yet, so the "article a human chose" is the one an annotator labelled as
the answer in the foundation suite (eval/suites/foundation.yaml): public articles for answerable questions and
the staff-only article for internal ones, which the copilot (unlike the bot) may use. Single-turn cases only.
Runs the configured chat model (the embedded one by default) over an in-memory index of knowledge/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.store import MessageView
from eval.questions import load_questions
from rag.loaders import load_directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/copilot_results.json"))
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    from datetime import UTC, datetime

    from atende.services import build_services

    settings = Settings(vector_store="memory", environment="test")
    services = build_services(settings)
    services.warm_up()
    services.index.sync(load_directory(settings.knowledge_dir))
    assert services.copilot is not None
    cases = [q for q in load_questions() if not q.history and (q.doc_id or q.internal_doc_id)]
    if args.limit:
        cases = cases[: args.limit]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for q in cases:
        chosen = q.internal_doc_id or q.doc_id
        message = MessageView(1, "bench", "user", q.question, None, (), datetime.now(UTC))
        suggestion = services.copilot.suggest([message])
        cited = [c["doc_id"] for c in suggestion.citations]
        rows.append(
            {
                "id": q.id,
                "chosen": chosen,
                "internal": q.internal_doc_id is not None,
                "suggested": bool(suggestion.text),
                "cited": cited,
                "retrieved": suggestion.retrieved,
                "accepted": chosen in cited,
                "reason": suggestion.reason,
            }
        )
    elapsed = time.perf_counter() - started
    services.close()
    n = len(rows)
    result = {
        "model": settings.llm_model,
        "cases": n,
        "acceptance_proxy": round(sum(r["accepted"] for r in rows) / n, 3),
        "suggestion_rate": round(sum(r["suggested"] for r in rows) / n, 3),
        "chosen_retrieved": round(sum(r["chosen"] in r["retrieved"] for r in rows) / n, 3),
        "internal": {
            "cases": sum(r["internal"] for r in rows),
            "accepted": sum(r["accepted"] for r in rows if r["internal"]),
        },
        "s_per_case": round(elapsed / n, 2),
        "misses": [r for r in rows if not r["accepted"]],
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print({k: v for k, v in result.items() if k != "misses"})


if __name__ == "__main__":
    main()

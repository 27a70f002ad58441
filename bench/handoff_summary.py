"""Handoff summary quality on hand-written transcripts, by a three-point rubric.

    python -m bench.handoff_summary [bench/handoff_summary_results.json]

Each transcript (bench/data/handoff_transcripts.json) says what a good summary must contain: the reason for
contact (phrases that must appear in it), the kinds of personal data the citizen gave, and the pending request
(a phrase, or none when the bot's last answer settled it). A summary earns one point per criterion met; it
also must never contain a personal-data value in clear. The rubric is checked mechanically, so the score is
reproducible; it judges coverage, not prose.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.agent_aids.summary import summarize
from core.i18n import t
from core.privacy import find_pii
from core.store import MessageView

DATA = Path(__file__).parent / "data" / "handoff_transcripts.json"


def _messages(rows: list[list[Any]]) -> list[MessageView]:
    now = datetime.now(UTC)
    return [
        MessageView(i, "bench", role, t("abstain") if text == "ABSTAIN" else text, decision, (), now)
        for i, (role, text, decision) in enumerate(rows, 1)
    ]


def score(case: dict[str, Any]) -> dict[str, Any]:
    messages = _messages(case["messages"])
    summary = summarize(messages)
    expect = case["expect"]
    reason_text = " ".join(summary["reason"])
    pending = summary["pending"]
    checks = {
        "reason": all(phrase.lower() in reason_text.lower() for phrase in expect["reason"]),
        "data": sorted(d["kind"] for d in summary["data"]) == sorted(expect["data"]),
        "pending": (pending is None)
        if expect["pending"] is None
        else (expect["pending"].lower() in (pending or "").lower()),
    }
    leaked = bool(find_pii(json.dumps(summary, ensure_ascii=False)))
    return {"id": case["id"], **checks, "leaked_pii": leaked, "points": sum(checks.values())}


def main() -> None:
    cases = json.loads(DATA.read_text(encoding="utf-8"))
    rows = [score(case) for case in cases]
    total = sum(r["points"] for r in rows)
    result = {
        "transcripts": len(rows),
        "score": round(total / (3 * len(rows)), 3),
        "by_criterion": {k: sum(1 for r in rows if r[k]) for k in ("reason", "data", "pending")},
        "leaked_pii": sum(1 for r in rows if r["leaked_pii"]),
        "misses": [r for r in rows if r["points"] < 3 or r["leaked_pii"]],
    }
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/handoff_summary_results.json")
    out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

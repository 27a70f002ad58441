"""Calibrate the evidence threshold that decides between answering and abstaining.

Every knowledge case of a suite is answered with the gates open, recording the retrieval confidence and the
selected parts' coverage of the question. The threshold is chosen on one half of the cases (by a hash of the case
id) to maximise (1 - false abstention) + correct abstention, and checked on the other half; then the halves swap.

    atende eval calibrate-evidence eval/suites/foundation.yaml --out docs/decisions/data/evidence-calibration.json
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from conversation.messages import InboundMessage
from conversation.service import build_conversations
from core.settings import Settings
from eval.chat_models import scripted_model
from eval.isolation import BuildServices, isolated_services
from eval.suite import load_suites


def _half(case_id: str) -> int:
    return int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 2


def collect(suite_path: Path, settings: Settings, build: BuildServices) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with isolated_services(settings, build, model=scripted_model(10), load_model=False) as services:
        assistant = services.assistant
        assistant.config = replace(assistant.config, evidence_threshold=0.0, abstain_threshold=0.0)
        assistant.actions = None  # knowledge questions only
        alone = build_conversations(services.engine, services.store, assistant, None)  # no handoff gate
        for suite in load_suites([suite_path]):
            for case in suite.cases:
                expect = case.turns[-1].expect
                if expect.abstains is None:
                    continue
                conversation = services.store.create_conversation("web").id
                for turn in case.turns:
                    outcome = alone.handle(InboundMessage(channel="web", conversation_id=conversation, text=turn.user))
                    reply = outcome.reply
                assert reply is not None  # no handoff gate: the assistant always replies
                if reply.route != "knowledge" or reply.evidence is None:
                    continue
                rows.append(
                    {
                        "id": case.id,
                        "half": _half(case.id),
                        "answerable": not expect.abstains,
                        "confidence": reply.confidence or 0.0,
                        "evidence": reply.evidence,
                    }
                )
    return rows


def _rates(rows: list[dict[str, Any]], threshold: float) -> tuple[float, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    false = sum(r["evidence"] < threshold for r in answerable) / max(len(answerable), 1)
    correct = sum(r["evidence"] < threshold for r in unanswerable) / max(len(unanswerable), 1)
    return false, correct


def calibrate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    grid = [round(0.2 + i * 0.005, 3) for i in range(161)]
    out: dict[str, Any] = {"cases": len(rows), "halves": []}
    for tune in (0, 1):
        tuned = [r for r in rows if r["half"] == tune]
        checked = [r for r in rows if r["half"] != tune]
        best = max(grid, key=lambda t: (1 - _rates(tuned, t)[0]) + _rates(tuned, t)[1])
        false_t, correct_t = _rates(tuned, best)
        false_c, correct_c = _rates(checked, best)
        out["halves"].append(
            {
                "tuned_on": tune,
                "threshold": best,
                "tuned": {"false_abstention": round(false_t, 3), "correct_abstention": round(correct_t, 3)},
                "checked": {"false_abstention": round(false_c, 3), "correct_abstention": round(correct_c, 3)},
            }
        )
    return out

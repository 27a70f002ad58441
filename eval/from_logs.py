"""Turn exported turn logs (`atende logs export`, JSON Lines or CSV) into a regression suite.

Each conversation becomes a case whose turns replay the citizen's messages and expect what the assistant
did then: the same articles cited, the same abstention, the same handoff. Text is masked again on the
way out (the turn log is masked when written; a regression suite may be shared more widely), and
conversation ids are replaced by a one-way digest.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core.privacy import mask
from eval.suite import parse_suite

CHANNELS = ("web", "whatsapp")


def read_turns(path: Path) -> list[dict[str, Any]]:
    """Rows of a turn-log export; CSV cells holding JSON lists are decoded."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows: list[dict[str, Any]] = []
        for row in csv.DictReader(text.splitlines()):
            for key in ("citations", "retrieved"):
                cell = row.get(key) or "[]"
                row[key] = json.loads(cell) if cell.startswith("[") else []  # type: ignore[assignment]
            rows.append(dict(row))
        return rows
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or "conversation_id" not in row:
            raise ValueError(f"line {n}: not a turn-log row (no conversation_id)")
        rows.append(row)
    return rows


def _expect(turn: Mapping[str, Any]) -> dict[str, Any]:
    decision = turn.get("decision")
    if turn.get("error"):
        return {}  # a failure then says nothing about what is right now
    if decision == "abstained":
        return {"abstains": True}
    if decision == "handoff":
        return {"handoff": True}
    if decision == "answered":
        cited = list(dict.fromkeys(str(c["doc_id"]) for c in turn.get("citations") or [] if c.get("doc_id")))
        return {"abstains": False, **({"cites": {"any": cited}} if cited else {})}
    return {}


def _case_id(conversation_id: str) -> str:
    return "conv-" + hashlib.sha256(conversation_id.encode()).hexdigest()[:12]


def suite_from_turns(
    turns: Iterable[Mapping[str, Any]],
    *,
    name: str | None = None,
    decisions: Sequence[str] = ("answered", "abstained", "handoff"),
    limit: int | None = None,
) -> dict[str, Any]:
    """A suite (as a mapping ready for YAML) with one case per conversation, oldest first.

    A conversation is kept when its last turn's decision is one of `decisions`.
    """
    by_conversation: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(turns, key=lambda t: (str(t.get("created_at", "")), int(t.get("id") or 0))):
        by_conversation.setdefault(str(row["conversation_id"]), []).append(row)
    cases: list[dict[str, Any]] = []
    for conversation_id, rows in by_conversation.items():
        if rows[-1].get("decision") not in decisions:
            continue
        case: dict[str, Any] = {"id": _case_id(conversation_id), "tags": ["from-logs", str(rows[-1].get("decision"))]}
        channel = rows[0].get("channel")
        if channel in CHANNELS:
            case["channel"] = channel
        case["turns"] = []
        for row in rows:
            turn: dict[str, Any] = {"user": mask(str(row.get("user_text") or "")).strip() or "?"}
            expect = _expect(row)
            if expect:
                turn["expect"] = expect
            case["turns"].append(turn)
        cases.append(case)
        if limit is not None and len(cases) >= limit:
            break
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return {
        "suite": name or f"from-logs-{today}",
        "description": f"Regressão gerada do registro de turnos em {today} (dados pessoais mascarados)",
        "cases": cases,
    }


def write_suite(suite: Mapping[str, Any], out: Path) -> Path:
    """Write the suite as YAML and check it loads, so a generated file is always a valid suite."""
    if not suite["cases"]:
        raise ValueError("no conversation matched; nothing to write")
    text = yaml.safe_dump(dict(suite), allow_unicode=True, sort_keys=False, width=120)
    parse_suite(text, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out

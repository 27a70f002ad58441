"""Aggregate metrics of a suite run, and the report files: report.json (machine) and report.html (people).

Every string written is passed through `core.privacy.mask`: a report never shows a CPF, e-mail or phone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.i18n import t
from core.privacy import mask
from eval.expectations import ToolMatch, match_tool_calls
from eval.metrics import (
    RETRIEVAL_METRICS,
    first_rank,
    latency_summary,
    mean,
    mrr_at,
    pass_hat_k,
    precision_recall,
    recall_at,
)
from eval.suite import ExpectedCall, ToolCallsExpectation


def _turns(cases: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [turn for c in cases for run in c["runs"] for turn in run["turns"]]


def _retrieval(turns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ranks: list[int | None] = []
    for turn in turns:
        wanted = turn["expect"].get("cites_any") or turn["expect"].get("cites_all")
        if wanted:
            docs = list(dict.fromkeys(h["doc_id"] for h in turn["retrieved"]))
            ranks.append(first_rank(docs, wanted))
    return {
        "n_turns": len(ranks),
        "recall@1": round(recall_at(ranks, 1), 4),
        "recall@3": round(recall_at(ranks, 3), 4),
        "mrr": round(mrr_at(ranks, 10), 4),
    }


def _tool_calls(turns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    matched = expected = called = 0
    for turn in turns:
        spec = turn["expect"].get("tool_calls")
        if spec is None:
            continue
        expectation = ToolCallsExpectation(
            tuple(ExpectedCall(c["name"], c.get("arguments") or {}) for c in spec["calls"]),
            ordered=spec["ordered"],
            exclusive=spec["exclusive"],
        )
        m: ToolMatch = match_tool_calls(expectation, turn["tool_calls"])
        matched, expected, called = matched + m.matched, expected + m.expected, called + m.called
    return {"expected": expected, "called": called, **precision_recall(matched, called, expected)}


def _binary(turns: Sequence[Mapping[str, Any]], key: str, happened: str) -> dict[str, Any]:
    tp = predicted = actual = n = 0
    for turn in turns:
        want = turn["expect"].get(key)
        if want is None:
            continue
        n += 1
        # Abstention is the assistant's own decision, even when the gate then handed the conversation off.
        decision = (turn.get("assistant_decision") or turn["decision"]) if key == "abstains" else turn["decision"]
        did = decision == happened or (key == "handoff" and bool(turn.get("handoff_team")))
        predicted += did
        actual += bool(want)
        tp += did and bool(want)
    return {"n_turns": n, **precision_recall(tp, predicted, actual)}


def summarise(cases: Sequence[Mapping[str, Any]], repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    turns = _turns(cases)
    successes = [c["passes"] for c in cases]
    faithful = [t["faithfulness"] for t in turns if t.get("faithfulness") is not None]
    prompt = sum(t["tokens"]["prompt"] or 0 for t in turns)
    completion = sum(t["tokens"]["completion"] or 0 for t in turns)
    by_route: dict[str, list[float]] = {}
    for turn in turns:
        by_route.setdefault(turn["route"], []).append(turn["latency_ms"])
    summary = {
        "n_cases": len(cases),
        "n_turns": len(turns),
        "passed": sum(c["passed"] for c in cases),
        "pass_rate": round(pass_hat_k(successes, repeat, 1), 4) if cases else 0.0,
        "pass_hat_k": {str(k): round(pass_hat_k(successes, repeat, k), 4) for k in range(1, repeat + 1)}
        if cases
        else {},
        "retrieval": _retrieval(turns),
        "tool_calls": _tool_calls(turns),
        "handoff": _binary(turns, "handoff", "handoff"),
        "abstention": _binary(turns, "abstains", "abstained"),
        "faithfulness": None if not faithful else round(mean(faithful) or 0.0, 4),
        "latency_ms": latency_summary([t["latency_ms"] for t in turns]),
        "first_words_ms": latency_summary([t.get("first_words_ms", t["latency_ms"]) for t in turns]),
        "latency_ms_by_route": {r: latency_summary(v) for r, v in sorted(by_route.items())},
        "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        "decisions": dict(sorted(Counter(t["decision"] for t in turns).items())),
    }
    tags: dict[str, list[Mapping[str, Any]]] = {}
    for case in cases:
        for tag in case["tags"] or ["(sem tag)"]:
            tags.setdefault(tag, []).append(case)
    by_tag = {
        tag: {
            "cases": len(group),
            "passed": sum(c["passed"] for c in group),
            "pass_rate": round(pass_hat_k([c["passes"] for c in group], repeat, 1), 4),
        }
        for tag, group in sorted(tags.items())
    }
    return summary, by_tag


def masked(value: Any) -> Any:
    """The value with personal data masked in every string it holds."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def write_report(report: Mapping[str, Any], out: Path) -> tuple[Path, Path | None]:
    """Write DIR/report.json and DIR/report.html (suite runs, retrieval and answers modes); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    safe = masked(report)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(safe, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    render = _RENDERERS.get(str(safe.get("kind")))
    if render is None:
        return json_path, None
    html_path = out / "report.html"
    html_path.write_text(render(safe), encoding="utf-8")
    return json_path, html_path


def histogram(values: Sequence[float], bins: int = 12) -> list[dict[str, float]]:
    """Equal-width bins over the observed range, for the latency chart."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return [{"start": lo + i * width, "end": lo + (i + 1) * width, "count": c} for i, c in enumerate(counts)]


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("eval", "templates"), autoescape=select_autoescape(["html"]))
    env.globals["t"] = t
    return env


def render_html(report: Mapping[str, Any]) -> str:
    latencies = [turn["latency_ms"] for turn in _turns(report["cases"])]
    return str(
        _environment()
        .get_template("report.html")
        .render(
            r=report,
            s=report["summary"],
            bins=histogram(latencies),
            max_count=max([b["count"] for b in histogram(latencies)] or [1]),
        )
    )


_RANK_BANDS = (("1", 1, 1), ("2–5", 2, 5), ("6–10", 6, 10))


def render_retrieval_html(report: Mapping[str, Any]) -> str:
    """The retrieval mode's page: the methods side by side, where the first hit lands, and the misses."""
    methods = list(report["methods"])
    rows = report.get("rows", [])
    rank_table = [
        (label, [sum(1 for row in rows if row[m] is not None and lo <= row[m] <= hi) for m in methods])
        for label, lo, hi in _RANK_BANDS
    ]
    rank_table.append((t("eval.report.not_found"), [sum(1 for row in rows if row[m] is None) for m in methods]))
    first = methods[0] if methods else ""
    misses = sorted((row for row in rows if row.get(first) != 1), key=lambda row: (row.get(first) or 99, row["id"]))
    return str(
        _environment()
        .get_template("retrieval.html")
        .render(
            r=report,
            metrics=RETRIEVAL_METRICS,
            best={k: max(m[k] for m in report["methods"].values()) for k in RETRIEVAL_METRICS},
            rank_table=rank_table,
            misses=misses,
        )
    )


def render_answers_html(report: Mapping[str, Any]) -> str:
    """The answers mode's page: the metrics, the latency distribution and every answer."""
    bins = histogram([row["latency_ms"] for row in report.get("rows", [])])
    return str(
        _environment()
        .get_template("answers.html")
        .render(r=report, m=report["metrics"], bins=bins, max_count=max([b["count"] for b in bins] or [1]))
    )


_RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "run": render_html,
    "retrieval": render_retrieval_html,
    "answers": render_answers_html,
}

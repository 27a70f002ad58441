"""The answer table: every answer mode, the scripted fake and the extractive floor, on the same columns.

    python -m bench.answers [--datasets foundation,pira,squad_pt] [--models embedded,scripted]
                            [--modes extractive,constrained,generative] [--limit 100] [--unanswerable-share 0.2]

Rows: the assistant in each answer mode this build has, with each model (`embedded` is the configured model,
`scripted` the deterministic fake of eval/chat_models.py, or a .gguf path), and the baseline (BM25's top document,
then its two sentences sharing the most stems with the question). Columns: expected fact in the answer,
token F1, words per answer, faithfulness, correct and false abstention, first-words and whole-answer latency.

Data:
- `foundation`: eval/suites/foundation.yaml through the `atende eval run` machinery on the sample knowledge
  base; answerable cases carry the facts (contains_any), unanswerable and internal ones expect abstention,
  small talk is left out (it measures routing, not answers);
- `pira`, `squad_pt`: the pt-qa sets (working slice by default), the first `--limit` questions; about
  `--unanswerable-share` of them (by id hash) lose their gold passages from the indexed KB and expect an
  abstention, and the other questions that lost a gold passage that way are not scored.

Writes bench/answers_results.json and bench/answers_results.md. Latency depends on what else runs on the
machine: the files record the core count and load average, and only a quiet machine's numbers count.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atende.services import build_services
from core.settings import Settings
from eval.answering import (
    BASELINE,
    ExtractiveBaseline,
    answer_mode_of,
    available_answer_modes,
    build_scorer,
    run_answers,
    suite_baseline_rows,
    suite_report_rows,
    warm_up_turn,
    with_answer_mode,
)
from eval.datasets import answer_metrics, read_kb, read_questions, select_slice

ROOT = Path(__file__).resolve().parent.parent
PT_QA = Path("/work/shared/data/pt-qa")
FOUNDATION = "foundation"
COLUMNS = (
    ("answer_contains", "expected fact"),
    ("token_f1", "token F1"),
    ("words_per_answer", "words/answer (mean · p50)"),
    ("faithfulness", "faithfulness"),
    ("correct_abstention", "correct abstention"),
    ("false_abstention", "false abstention"),
    ("first_words_ms", "first words p50 / p95 ms"),
    ("latency_ms", "whole answer p50 / p95 ms"),
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _model(settings: Settings, name: str, calls: int) -> tuple[Settings, Any, bool]:
    """Settings, injected model (None: the configured one) and whether to load it, for a `--models` entry."""
    from eval.chat_models import SCRIPTED, resolve_model

    resolved, model = resolve_model(settings, None if name == "embedded" else name, calls=calls)
    return resolved, model, name != SCRIPTED


def _modes(requested: Sequence[str] | None, settings: Settings) -> list[str]:
    known = available_answer_modes()
    if not requested:
        return list(known) if known is not None else [answer_mode_of(settings)]
    missing = [m for m in requested if known is not None and m not in known]
    if missing:
        raise SystemExit(
            f"answer mode(s) not in this build: {', '.join(missing)} (available: {', '.join(known or [])})"
        )
    return list(requested)


def _row(label: str, kind: str, model: str, mode: str | None, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"row": label, "responder": kind, "model": model, "answer_mode": mode, "metrics": metrics, **extra}


def foundation_rows(
    settings: Settings,
    *,
    suite_path: Path,
    knowledge_dir: Path | None,
    models: Sequence[str],
    modes: Sequence[str],
    baseline: bool,
    judge: str | None,
) -> dict[str, Any]:
    """The suite through `atende eval run`'s machinery (isolated services, the streaming entry point)."""
    from eval.chat_models import scripted_model
    from eval.isolation import isolated_services
    from eval.runner import run_suites
    from eval.suite import load_suites
    from rag.loaders import load_directory

    suites = load_suites([suite_path])
    turns = sum(len(c.turns) for s in suites for c in s.cases)
    rows: list[dict[str, Any]] = []
    for name in models:
        for mode in modes:
            started = time.perf_counter()
            resolved, model, load = _model(with_answer_mode(settings, mode), name, 4 * turns + 10)
            _say(f"foundation: {mode} with {name}…")
            with isolated_services(
                resolved, build_services, model=model, knowledge_dir=knowledge_dir, load_model=load
            ) as services:
                warm_up_turn(services)
                report = run_suites(suites, services, scorer=build_scorer(services, judge))
                model_id = services.model.model_id
            items, errors = suite_report_rows(report)
            rows.append(
                _row(
                    f"{mode} · {model_id}",
                    "assistant",
                    model_id,
                    mode,
                    answer_metrics(items),
                    n_items=len(items),
                    n_unanswerable=sum(bool(r["expects_abstention"]) for r in items),
                    errors=errors,
                    llm_errors=sum(
                        t.get("reason") == "llm_error" for c in report["cases"] for r in c["runs"] for t in r["turns"]
                    ),
                    pass_rate=report["summary"]["pass_rate"],
                    duration_s=round(time.perf_counter() - started, 1),
                )
            )
    if baseline:
        started = time.perf_counter()
        _say("foundation: baseline…")
        # The model is never asked; the services only give the faithfulness scorer its embedder.
        with isolated_services(
            settings, build_services, model=scripted_model(0), documents=[], load_model=False
        ) as services:
            extractive = ExtractiveBaseline(load_directory(knowledge_dir or settings.knowledge_dir))
            extractive.warm_up()
            items = suite_baseline_rows(suites, extractive, build_scorer(services, judge))
        rows.append(
            _row(
                ExtractiveBaseline.name,
                BASELINE,
                "-",
                None,
                answer_metrics(items),
                n_items=len(items),
                n_unanswerable=sum(bool(r["expects_abstention"]) for r in items),
                errors=0,
                duration_s=round(time.perf_counter() - started, 1),
            )
        )
    return {"source": str(suite_path), "rows": rows}


def dataset_rows(
    settings: Settings,
    folder: Path,
    *,
    slice_name: str,
    limit: int | None,
    unanswerable_share: float,
    models: Sequence[str],
    modes: Sequence[str],
    baseline: bool,
    judge: str | None,
) -> dict[str, Any]:
    """One pt-qa-format set (kb.jsonl, questions.jsonl): the slice's first `limit` questions."""
    records = read_kb(folder / "kb.jsonl")
    questions = select_slice(read_questions(folder / "questions.jsonl"), slice_name)[:limit]
    runs: list[tuple[str, str | None, str]] = [("assistant", mode, name) for name in models for mode in modes]
    if baseline:
        # The baseline asks no model; only an LLM judge needs the real one.
        runs.append((BASELINE, None, "embedded" if judge == "llm" else "scripted"))
    rows: list[dict[str, Any]] = []
    for responder, mode, name in runs:
        started = time.perf_counter()
        resolved, model, load = _model(settings, name, 2 * len(questions) + 10)
        _say(f"{folder.name}: {responder if mode is None else mode} with {name}…")
        report = run_answers(
            records,
            questions,
            resolved,
            build_services,
            responder=responder,
            mode=mode,
            model=model,
            load_model=load,
            judge=judge,
            unanswerable_share=unanswerable_share,
        )
        label = ExtractiveBaseline.name if responder == BASELINE else f"{report['answer_mode']} · {report['model']}"
        rows.append(
            _row(
                label,
                responder,
                report["model"],
                report["answer_mode"],
                report["metrics"],
                n_items=report["n_questions"],
                n_unanswerable=report["n_unanswerable"],
                unanswerable=report["unanswerable"],
                timings_ms=report["timings_ms"],
                llm_errors=report["n_llm_errors"],
                duration_s=round(time.perf_counter() - started, 1),
            )
        )
    return {"source": str(folder), "slice": slice_name, "limit": limit, "rows": rows}


def _cell(key: str, value: Any) -> str:
    if key == "words_per_answer":
        return " · ".join("—" if value[k] is None else f"{value[k]:.1f}" for k in ("mean", "p50"))
    if key in ("first_words_ms", "latency_ms"):
        return f"{value['p50']:.0f} / {value['p95']:.0f}"
    return "—" if value is None else f"{value:.3f}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# Answer modes, measured",
        "",
        f"`{results['command']}` on {results['created_at']}; {machine['cpus']} CPU(s), load average "
        f"{machine['load_average']} at the start. Latency is only comparable between runs on a quiet machine.",
        "",
        "First words: from sending the message to the first text the citizen sees (the first streamed token, or "
        "the whole reply when nothing streams). Facts and token F1 are over questions with an expected fact "
        "(an abstention there scores 0); words and faithfulness over answered questions; correct abstention over "
        "questions the knowledge base cannot answer, false abstention over those it can.",
    ]
    for name, data in results["datasets"].items():
        lines += ["", f"## {name}", ""]
        if name == FOUNDATION:
            lines.append(f"{data['source']}: answerable, unanswerable and internal cases; small talk left out.")
        else:
            u = data["rows"][0]["unanswerable"] if data["rows"] else {}
            lines.append(
                f"{data['source']}, {data['slice']} slice, first {data['limit'] or 'all'} questions; "
                f"{u.get('questions', 0)} made unanswerable (share {u.get('share', 0)}, their "
                f"{u.get('dropped_documents', 0)} gold passages left out of the KB), {u.get('excluded_questions', 0)} "
                "others that lost a gold passage not scored."
            )
        header = ["row", *(label for _, label in COLUMNS), "n (unanswerable)"]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
        for row in data["rows"]:
            cells = [_cell(key, row["metrics"][key]) for key, _ in COLUMNS]
            lines.append(f"| {row['row']} | " + " | ".join(cells) + f" | {row['n_items']} ({row['n_unanswerable']}) |")
        failed = [f"{r['row']}: {r['llm_errors']}" for r in data["rows"] if r.get("llm_errors")]
        broken = [f"{r['row']}: {r['errors']}" for r in data["rows"] if r.get("errors")]
        if failed:
            lines += ["", "Model calls that failed or timed out (counted as abstentions): " + "; ".join(failed) + "."]
        if broken:
            lines += ["", "Suite runs that raised before being checked (left out): " + "; ".join(broken) + "."]
    return "\n".join(lines) + "\n"


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="foundation,pira,squad_pt", help="foundation and/or pt-qa set names")
    parser.add_argument("--models", default="embedded,scripted", help="embedded, scripted or .gguf paths")
    parser.add_argument("--modes", default=None, help="answer modes (default: every mode this build has)")
    parser.add_argument("--no-baseline", action="store_true", help="leave the extractive floor out")
    parser.add_argument("--limit", type=int, default=100, help="questions per pt-qa set (0: all)")
    parser.add_argument("--slice", default="working", choices=("working", "heldout", "all"))
    parser.add_argument("--unanswerable-share", type=float, default=0.2)
    parser.add_argument("--judge", default="support", choices=("support", "llm"))
    parser.add_argument("--pt-qa", type=Path, default=PT_QA, help="folder holding the pt-qa sets")
    parser.add_argument("--suite", type=Path, default=ROOT / "eval" / "suites" / "foundation.yaml")
    parser.add_argument("--knowledge", type=Path, default=None, help="knowledge folder for the suite")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "answers_results.json")
    parser.add_argument("--md", type=Path, default=ROOT / "bench" / "answers_results.md")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    modes = _modes(_split(args.modes), settings)
    models = _split(args.models) or []
    datasets = _split(args.datasets) or []
    limit = args.limit or None
    results: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.answers " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "models": models,
            "modes": modes,
            "baseline": not args.no_baseline,
            "limit": limit,
            "slice": args.slice,
            "unanswerable_share": args.unanswerable_share,
            "judge": args.judge,
        },
        "datasets": {},
    }
    for name in datasets:
        if name == FOUNDATION:
            results["datasets"][name] = foundation_rows(
                settings,
                suite_path=args.suite,
                knowledge_dir=args.knowledge,
                models=models,
                modes=modes,
                baseline=not args.no_baseline,
                judge=args.judge,
            )
        else:
            results["datasets"][name] = dataset_rows(
                settings,
                args.pt_qa / name,
                slice_name=args.slice,
                limit=limit,
                unanswerable_share=args.unanswerable_share,
                models=models,
                modes=modes,
                baseline=not args.no_baseline,
                judge=args.judge,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    args.md.write_text(markdown(results), encoding="utf-8")
    _say(f"wrote {args.out} and {args.md}")
    return results


if __name__ == "__main__":
    main()

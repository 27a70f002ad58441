"""`atende eval`: run suites, measure retrieval and answers on outside data sets, compare reports, mine logs,
update the regression gates' baselines and run the calibrations.

The harness (`eval`) measures the application without assembling it; these commands hand it the shell's assembly.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.settings import Settings

if TYPE_CHECKING:
    from eval.faithfulness import FaithfulnessScorer
    from eval.isolation import EvalServices

app = typer.Typer(help="Evaluation: suites, data-set modes, reports and the regression gate.", no_args_is_help=True)

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help='"scripted" (deterministic, for CI), a .gguf path, or a model name for the backend'),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Report directory (report.json, report.html)")]
JudgeOpt = Annotated[
    str | None, typer.Option("--judge", help="Faithfulness scorer: support or llm (default ATENDE_EVAL_JUDGE)")
]

ModeOpt = Annotated[
    str | None,
    typer.Option("--mode", help="Answer mode (extractive, constrained, generative…; default ATENDE_ANSWER_MODE)"),
]


def _settings() -> Settings:
    return Settings()


def _answer_mode(settings: Settings, mode: str | None) -> Settings:
    from eval.answering import with_answer_mode

    try:
        return with_answer_mode(settings, mode)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mode") from exc


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


class _Ticker:
    """Advances the progress bar by one item; `say` prints a line above it."""

    def __init__(self, bar: Any, task: Any, label: str) -> None:
        self.bar, self.task, self.label = bar, task, label

    def __call__(self, item: str) -> None:
        self.bar.update(self.task, advance=1, description=f"{self.label} {item}")

    def say(self, message: str) -> None:
        self.bar.console.print(message)


@contextmanager
def _progress(total: int, label: str) -> Iterator[_Ticker]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_console()
    ) as bar:
        yield _Ticker(bar, bar.add_task(label, total=total), label)


def _scorer(services: EvalServices, judge: str | None) -> FaithfulnessScorer:
    from eval.answering import build_scorer

    try:
        return build_scorer(services, judge)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--judge") from exc


def _table(title: str, rows: Sequence[tuple[str, ...]], header: Sequence[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="left" if h == header[0] else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@app.command("run")
def run(
    suites: Annotated[list[Path], typer.Argument(help="Suite files or folders of *.yaml")],
    out: OutOpt = Path("eval/reports/latest"),
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Runs per case; reports pass^k")] = 1,
    model: ModelOpt = None,
    kb: Annotated[Path | None, typer.Option("--kb", help="Knowledge folder (default ATENDE_KNOWLEDGE_DIR)")] = None,
    judge: JudgeOpt = None,
    mode: ModeOpt = None,
) -> None:
    """Run suites through the channels' entry point (handoff gate included) in a throwaway database and index."""
    from atende.services import build_services
    from eval.answering import answer_mode_of
    from eval.chat_models import SCRIPTED, resolve_model
    from eval.isolation import isolated_services
    from eval.report import write_report
    from eval.runner import run_suites
    from eval.suite import SuiteError, load_suites

    logging.basicConfig(level=logging.WARNING)
    try:
        loaded = load_suites(suites)
    except SuiteError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    turns = sum(len(c.turns) for s in loaded for c in s.cases) * repeat
    settings, chat_model = resolve_model(_answer_mode(_settings(), mode), model, calls=4 * turns + 10)
    with (
        isolated_services(
            settings, build_services, model=chat_model, knowledge_dir=kb, load_model=model != SCRIPTED
        ) as services,
        _progress(turns, "eval") as tick,
    ):
        report = run_suites(
            loaded,
            services,
            repeat=repeat,
            scorer=_scorer(services, judge),
            progress=tick,
            meta={"knowledge_dir": str(services.settings.knowledge_dir), "answer_mode": answer_mode_of(settings)},
        )
    json_path, html_path = write_report(report, out)
    s = report["summary"]
    rows = [
        ("cases", str(s["n_cases"])),
        ("passed", str(s["passed"])),
        ("pass rate", _fmt(s["pass_rate"])),
        *[(f"pass^{k}", _fmt(v)) for k, v in s["pass_hat_k"].items() if k != "1"],
        ("recall@1 / mrr", f"{_fmt(s['retrieval']['recall@1'])} / {_fmt(s['retrieval']['mrr'])}"),
        ("faithfulness", _fmt(s["faithfulness"])),
        ("tool calls P / R", f"{_fmt(s['tool_calls']['precision'])} / {_fmt(s['tool_calls']['recall'])}"),
        ("handoff P / R", f"{_fmt(s['handoff']['precision'])} / {_fmt(s['handoff']['recall'])}"),
        ("latency p50 / p95 ms", f"{s['latency_ms']['p50']:.0f} / {s['latency_ms']['p95']:.0f}"),
        ("first words p50 / p95 ms", f"{s['first_words_ms']['p50']:.0f} / {s['first_words_ms']['p95']:.0f}"),
        ("tokens", str(s["tokens"]["total"])),
    ]
    _table("atende eval run", rows, ("metric", "value"))
    failed = [c for c in report["cases"] if not c["passed"]]
    for case in failed[:20]:
        typer.echo(f"FAIL {case['key']}: {case['reason']}")
    if len(failed) > 20:
        typer.echo(f"... and {len(failed) - 20} more (see {html_path})")
    typer.echo(f"report: {json_path} {html_path}")


def _load_dataset(kb: Path, questions: Path, limit: int | None) -> tuple[Any, Any]:
    from eval.datasets import DatasetError, read_kb, read_questions

    try:
        records = read_kb(kb)
        items = read_questions(questions)
    except DatasetError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    return records, items[:limit] if limit else items


@app.command("retrieval")
def retrieval(
    kb: Annotated[Path, typer.Option("--kb", help='KB.jsonl: {"id","title","text","source"} per line')],
    questions: Annotated[Path, typer.Option("--questions", help='Q.jsonl: {"id","question","answers","doc_id"}')],
    out: OutOpt = Path("eval/reports/retrieval"),
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions")] = None,
) -> None:
    """Document-level retrieval quality: the project's retriever against BM25-only and dense-only baselines."""
    from atende.services import build_embedder, retrieval_params
    from eval.datasets import evaluate_retrieval, known_questions
    from eval.metrics import RETRIEVAL_METRICS
    from eval.report import write_report

    logging.basicConfig(level=logging.WARNING)
    records, items = _load_dataset(kb, questions, limit)
    if not known_questions(items, {r.id for r in records})[0]:
        typer.echo(f"{questions}: no question expects a document that is in {kb}", err=True)
        raise typer.Exit(2)
    started = time.perf_counter()
    with _progress(len(items), "queries") as tick:
        settings = _settings()
        report = evaluate_retrieval(
            records, items, build_embedder(settings), retrieval_params(settings), progress=tick, phase=tick.say
        )
    report["timings_s"]["total"] = round(time.perf_counter() - started, 1)
    path, html_path = write_report(report, out)
    rows = [
        (
            name,
            *(_fmt(m[k]) for k in RETRIEVAL_METRICS),
            f"{m['latency_ms']['p50']:.1f}",
            f"{m['latency_ms']['p95']:.1f}",
        )
        for name, m in report["methods"].items()
    ]
    params = report["params"]
    _table(
        f"{report['n_questions']} questions, {report['n_documents']} documents, {report['n_chunks']} chunks; "
        f"atende = {params['fusion']} fusion, dense weight {params['dense_weight']}, {params['candidates']} candidates",
        rows,
        ("method", *RETRIEVAL_METRICS, "p50 ms", "p95 ms"),
    )
    timings = report["timings_s"]
    if report["skipped"]["unknown_doc"]:
        typer.echo(f"not scored: {report['skipped']['unknown_doc']} question(s) whose doc_id is not in the KB")
    typer.echo(
        f"indexing {timings['indexing']} s, query embedding {timings['query_embedding']} s, "
        f"ranking {timings['queries']} s, total {timings['total']} s; report: {path} {html_path}"
    )


@app.command("answers")
def answers(
    kb: Annotated[Path, typer.Option("--kb", help='KB.jsonl: {"id","title","text","source"} per line')],
    questions: Annotated[Path, typer.Option("--questions", help='Q.jsonl: {"id","question","answers","doc_id"}')],
    out: OutOpt = Path("eval/reports/answers"),
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions of the slice")] = None,
    model: ModelOpt = None,
    judge: JudgeOpt = None,
    mode: ModeOpt = None,
    slice_: Annotated[
        str,
        typer.Option("--slice", help="working, heldout or all (held out: sha256(id) % 10 < 2, kept for the final run)"),
    ] = "working",
    unanswerable_share: Annotated[
        float,
        typer.Option(
            "--unanswerable-share",
            min=0,
            max=0.9,
            help="Share of questions (by id hash) whose gold passages are left out of the KB; they expect abstention",
        ),
    ] = 0.0,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Answer with the extractive floor (BM25 top document, 2 sentences)")
    ] = False,
) -> None:
    """Answer every question through the channels' streaming entry point (or the baseline) and score the answers."""
    from atende.services import build_services
    from eval.answering import BASELINE, plan_answers, run_answers
    from eval.chat_models import SCRIPTED, resolve_model
    from eval.datasets import SLICES, select_slice
    from eval.report import write_report

    logging.basicConfig(level=logging.WARNING)
    if slice_ not in SLICES:
        raise typer.BadParameter(f"{slice_!r}: use {', '.join(SLICES)}", param_hint="--slice")
    if judge is not None and judge not in ("support", "llm"):
        raise typer.BadParameter(f"{judge!r}: use support or llm", param_hint="--judge")
    records, items = _load_dataset(kb, questions, None)
    items = select_slice(items, slice_)[:limit] if limit else select_slice(items, slice_)
    try:
        scored = len(plan_answers(records, items, unanswerable_share).scored)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    settings, chat_model = resolve_model(_settings(), model, calls=2 * len(items) + 10)
    with _progress(scored, "answers") as tick:
        try:
            report = run_answers(
                records,
                items,
                settings,
                build_services,
                responder=BASELINE if baseline else "assistant",
                mode=mode,
                model=chat_model,
                load_model=model != SCRIPTED,
                judge=judge,
                unanswerable_share=unanswerable_share,
                progress=tick,
                phase=tick.say,
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    report["slice"] = slice_
    path, html_path = write_report(report, out)
    m = report["metrics"]
    words = m["words_per_answer"]
    rows = [
        ("answer_contains", _fmt(m["answer_contains"])),
        ("token_f1", _fmt(m["token_f1"])),
        ("words / answer (mean · p50)", f"{_fmt(words['mean'])} · {_fmt(words['p50'])}"),
        ("faithfulness", _fmt(m["faithfulness"])),
        ("abstained", _fmt(m["abstained"])),
        ("correct abstention", _fmt(m["correct_abstention"])),
        ("false abstention", _fmt(m["false_abstention"])),
        ("first words p50 / p95 ms", f"{m['first_words_ms']['p50']:.0f} / {m['first_words_ms']['p95']:.0f}"),
        ("whole answer p50 / p95 ms", f"{m['latency_ms']['p50']:.0f} / {m['latency_ms']['p95']:.0f}"),
    ]
    mode_label = f", mode {report['answer_mode']}" if report["answer_mode"] else ""
    title = (
        f"{report['n_questions']} questions ({report['n_unanswerable']} unanswerable), {report['model']}{mode_label}"
    )
    _table(title, rows, ("metric", "value"))
    u = report["unanswerable"]
    if u["questions"]:
        typer.echo(
            f"unanswerable: {u['questions']} question(s), {u['dropped_documents']} gold passage(s) left out of the KB, "
            f"{u['excluded_questions']} other question(s) that lost theirs not scored"
        )
    if report["skipped"]["unknown_doc"]:
        typer.echo(f"not scored: {report['skipped']['unknown_doc']} question(s) whose doc_id is not in the KB")
    typer.echo(f"report: {path} {html_path}")


@app.command("compare")
def compare_cmd(
    base: Annotated[Path, typer.Argument(help="Baseline report.json")],
    new: Annotated[Path, typer.Argument(help="New report.json")],
    min_pass_rate: Annotated[
        float | None, typer.Option("--min-pass-rate", min=0, max=1, help="Fail if the new pass rate is lower")
    ] = None,
    no_regressions: Annotated[bool, typer.Option("--no-regressions", help="Fail on a regression")] = False,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0, help="Pass-rate (or metric) drop allowed before it counts as a regression"),
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON")] = False,
) -> None:
    """List regressions and improvements; exit 1 when a gate (--min-pass-rate, --no-regressions) fails."""
    from eval.compare import compare

    try:
        reports = [json.loads(p.read_text(encoding="utf-8")) for p in (base, new)]
    except (OSError, json.JSONDecodeError) as exc:
        typer.echo(f"cannot read report: {exc}", err=True)
        raise typer.Exit(2) from exc
    result = compare(*reports, min_pass_rate=min_pass_rate, no_regressions=no_regressions, tolerance=tolerance)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=1, ensure_ascii=False))
    else:
        if result.base_pass_rate is not None:
            typer.echo(f"pass rate {result.base_pass_rate:.3f} -> {result.new_pass_rate:.3f}")
        for r in result.regressions:
            typer.echo(f"REGRESSION {r['key']}: {r['before']:.2f} -> {r['after']:.2f} {r['reason']}")
        for r in result.improvements:
            typer.echo(f"IMPROVED   {r['key']}: {r['before']:.2f} -> {r['after']:.2f}")
        for key in result.added:
            typer.echo(f"NEW        {key}")
        for key in result.removed:
            typer.echo(f"REMOVED    {key}")
        changed = [m for m in result.metrics if m["delta"]]
        for m in changed:
            typer.echo(f"metric {m['metric']}: {m['before']:.4g} -> {m['after']:.4g}")
        for failure in result.gate_failures:
            typer.echo(f"GATE FAILED: {failure}", err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("from-logs")
def from_logs(
    turns: Annotated[Path, typer.Argument(help="Export of `atende logs export` (.jsonl or .csv)")],
    out: Annotated[Path, typer.Option("--out", help="Suite file to write")] = Path("eval/suites/from-logs.yaml"),
    name: Annotated[str | None, typer.Option("--name", help="Suite name (default from-logs-DATE)")] = None,
    decisions: Annotated[
        str, typer.Option("--decisions", help="Keep conversations whose last turn had one of these decisions")
    ] = "answered,abstained,handoff",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N conversations")] = None,
) -> None:
    """Turn exported turn logs into a regression suite (personal data masked)."""
    from eval.from_logs import read_turns, suite_from_turns, write_suite

    try:
        rows = read_turns(turns)
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"cannot read {turns}: {exc}", err=True)
        raise typer.Exit(2) from exc
    suite = suite_from_turns(rows, name=name, decisions=[d.strip() for d in decisions.split(",")], limit=limit)
    try:
        path = write_suite(suite, out)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{len(suite['cases'])} case(s) from {len(rows)} turn(s) written to {path}")


@app.command("ci")
def ci(
    update: Annotated[str, typer.Option("--update", help="The gate whose baseline to rewrite: smoke or real-model")],
) -> None:
    """Rewrite a regression gate's committed baseline (eval/ci/) after an intended change in behaviour."""
    from atende.services import build_services
    from eval.ci import GATES, update_baseline

    if update not in GATES:
        raise typer.BadParameter(f"{update!r}: use {' or '.join(sorted(GATES))}", param_hint="--update")
    gate = GATES[update]
    report = update_baseline(gate, build_services)
    typer.echo(f"{gate.baseline}: pass rate {report['summary']['pass_rate']:.3f} ({report['summary']['passed']} cases)")


@app.command("calibrate-evidence")
def calibrate_evidence(
    suite: Annotated[Path, typer.Argument(help="A suite whose knowledge cases say whether to abstain")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the result here too (JSON)")] = None,
) -> None:
    """Calibrate the evidence threshold between answering and abstaining, tuned on one half of the cases."""
    from atende.services import build_services
    from eval.calibrate_evidence import calibrate, collect

    result = calibrate(collect(suite, _settings(), build_services))
    text = json.dumps(result, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


@app.command("calibrate-faithfulness")
def calibrate_faithfulness(
    out: Annotated[Path | None, typer.Option("--out", help="Write the result here too (JSON)")] = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Report the shipped defaults, not the fitted ones")
    ] = False,
) -> None:
    """Fit and check the support scorer against the hand-labelled pt-BR examples (eval/data)."""
    from atende.services import build_embedder
    from eval.calibrate_faithfulness import measure
    from eval.faithfulness import SupportParams

    embedder = build_embedder(Settings(environment="development"))
    result = measure(embedder, SupportParams() if defaults else None)
    typer.echo(json.dumps(result, indent=2))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


# Its options take space-separated lists (`--routing rules hybrid model`), which argparse reads and typer does not.
@app.command(
    "tool-accuracy",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def tool_accuracy(ctx: typer.Context) -> None:
    """Tool-selection and argument accuracy on the tool suites, per routing strategy (--help for the options)."""
    from atende.services import build_chat_model, build_services
    from eval.tool_accuracy import main

    main(ctx.args, build=build_services, chat_model=build_chat_model)


@app.command(
    "intent-cv",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def intent_cv(ctx: typer.Context) -> None:
    """The intent reader left one everyday round out at a time, its checks and costs (--help for the options)."""
    from atende.services import build_services
    from eval.intent_cv import main

    main(ctx.args, build=build_services)


if __name__ == "__main__":
    app(sys.argv[1:])

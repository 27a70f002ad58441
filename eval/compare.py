"""Compare two reports: which cases regressed or improved, how the metrics moved, and whether a gate fails."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Metrics where a lower value is better; every other numeric metric is better higher.
_LOWER_IS_BETTER = (
    "latency",
    "p50",
    "p95",
    "tokens",
    "abstained",
    "false_abstention",
    "words_per_answer",
    "duration",
)


@dataclass
class Comparison:
    regressions: list[dict[str, Any]] = field(default_factory=list)
    improvements: list[dict[str, Any]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    base_pass_rate: float | None = None
    new_pass_rate: float | None = None
    gate_failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.gate_failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "gate_failures": self.gate_failures,
            "base_pass_rate": self.base_pass_rate,
            "new_pass_rate": self.new_pass_rate,
            "regressions": self.regressions,
            "improvements": self.improvements,
            "added": self.added,
            "removed": self.removed,
            "metrics": self.metrics,
        }


def _numbers(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        yield prefix, float(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _numbers(v, f"{prefix}.{k}" if prefix else str(k))


def _metric_block(report: Mapping[str, Any]) -> Mapping[str, Any]:
    key = "summary" if report.get("kind") == "run" else "methods" if "methods" in report else "metrics"
    block: Mapping[str, Any] = report.get(key) or {}
    return block


def compare(
    base: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    min_pass_rate: float | None = None,
    no_regressions: bool = False,
    tolerance: float = 0.0,
) -> Comparison:
    """`tolerance` is how far the pass rate (or, for data-set reports, any quality metric) may fall before it
    counts as a regression; with `no_regressions`, any regressed case or such a metric fails the gate."""
    result = Comparison()
    base_cases = {c["key"]: c for c in base.get("cases", [])}
    new_cases = {c["key"]: c for c in new.get("cases", [])}
    for key, case in new_cases.items():
        old = base_cases.get(key)
        if old is None:
            result.added.append(key)
            continue
        before = old["passes"] / old["repeat"]
        after = case["passes"] / case["repeat"]
        row = {"key": key, "before": round(before, 4), "after": round(after, 4), "reason": case.get("reason", "")}
        if after < before:
            result.regressions.append(row)
        elif after > before:
            result.improvements.append(row)
    result.removed = sorted(set(base_cases) - set(new_cases))

    old_metrics = dict(_numbers(_metric_block(base)))
    quality_drops = []
    for name, value in _numbers(_metric_block(new)):
        if name not in old_metrics:
            continue
        before_value = old_metrics[name]
        row = {"metric": name, "before": before_value, "after": value, "delta": round(value - before_value, 6)}
        result.metrics.append(row)
        lower_better = any(part in name for part in _LOWER_IS_BETTER)
        if not lower_better and not name.startswith(("n_", "passed")) and value < before_value - tolerance:
            quality_drops.append(row)

    if new.get("kind") == "run":
        result.base_pass_rate = base.get("summary", {}).get("pass_rate")
        result.new_pass_rate = new.get("summary", {}).get("pass_rate")
        if min_pass_rate is not None and (result.new_pass_rate or 0.0) < min_pass_rate:
            result.gate_failures.append(
                f"pass rate {result.new_pass_rate:.3f} is below the minimum {min_pass_rate:.3f}"
            )
        if no_regressions:
            drop = (result.base_pass_rate or 0.0) - (result.new_pass_rate or 0.0)
            if drop > tolerance + 1e-9:
                result.gate_failures.append(
                    f"pass rate fell by {drop:.3f} ({result.base_pass_rate:.3f} → {result.new_pass_rate:.3f}), "
                    f"more than the tolerance {tolerance:.3f}"
                )
            if result.regressions and tolerance == 0:
                keys = ", ".join(r["key"] for r in result.regressions)
                result.gate_failures.append(f"{len(result.regressions)} case(s) regressed: {keys}")
    elif no_regressions and quality_drops:
        names = ", ".join(f"{r['metric']} {r['before']:.3f} → {r['after']:.3f}" for r in quality_drops)
        result.gate_failures.append(f"metrics fell by more than the tolerance {tolerance}: {names}")
    return result

"""Fit and check the support scorer against the hand-labelled pt-BR examples.

    atende eval calibrate-faithfulness [--out docs/decisions/data/faithfulness-agreement.json]

Parameters are fitted on the odd-numbered items and checked on the even ones, so the reported agreement
is not only agreement with the data the parameters were chosen on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from eval.faithfulness import Evidence, SupportParams, SupportScorer
from eval.metrics import cohen_kappa
from rag.ports import Embedder

LABELS = Path(__file__).parent / "data" / "faithfulness_labels.yaml"


@dataclass(frozen=True)
class Labelled:
    id: str
    context: str
    sentence: str
    supported: bool


def load_labels(path: Path = LABELS) -> list[Labelled]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Labelled(str(i["id"]), " ".join(i["context"].split()), i["sentence"], bool(i["supported"]))
        for i in data["items"]
    ]


def agreement(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, float]:
    n = len(truth)
    return {
        "n": n,
        "accuracy": round(sum(a == b for a, b in zip(truth, predicted, strict=True)) / n, 3),
        "kappa": round(cohen_kappa(truth, predicted), 3),
    }


def evidence(scorer: SupportScorer, items: Sequence[Labelled]) -> list[Evidence]:
    return [scorer.components([i.sentence], [i.context])[0] for i in items]


def fit(found: Sequence[Evidence], truth: Sequence[bool]) -> SupportParams:
    """The most accurate parameters on a grid; ties go to the first (more lexical, lower threshold)."""
    best: tuple[float, SupportParams] | None = None
    for w, floor, thr in itertools.product(
        (1.0, 0.8, 0.7, 0.6, 0.5, 0.4), (0.75, 0.8, 0.85, 0.9), [x / 100 for x in range(40, 96, 5)]
    ):
        params = SupportParams(lexical_weight=w, dense_floor=floor, threshold=thr)
        acc = agreement(truth, [e.supported(params) for e in found])["accuracy"]
        if best is None or acc > best[0]:
            best = (acc, params)
    assert best is not None
    return best[1]


def measure(embedder: Embedder, params: SupportParams | None = None) -> dict[str, Any]:
    items = load_labels()
    found = evidence(SupportScorer(embedder), items)
    odd = [int(i.id.lstrip("f")) % 2 == 1 for i in items]
    truth = [i.supported for i in items]

    def half(values: Sequence[Any], want: bool) -> list[Any]:
        return [v for v, o in zip(values, odd, strict=True) if o == want]

    fitted = fit(half(found, True), half(truth, True))
    chosen = params or fitted
    lexical = SupportParams(lexical_weight=1.0, threshold=chosen.threshold)
    return {
        "embedder": embedder.model_id,
        "fitted_on_tune_half": asdict(fitted),
        "params": asdict(chosen),
        "tune": agreement(half(truth, True), [e.supported(chosen) for e in half(found, True)]),
        "check": agreement(half(truth, False), [e.supported(chosen) for e in half(found, False)]),
        "all": agreement(truth, [e.supported(chosen) for e in found]),
        "lexical_only_all": agreement(truth, [e.supported(lexical) for e in found]),
        "numbers_only_all": agreement(truth, [e.numbers_found for e in found]),
        "disagreements": [
            {"id": i.id, "label": i.supported, "score": round(e.score(chosen), 3), "numbers_found": e.numbers_found}
            for i, e in zip(items, found, strict=True)
            if e.supported(chosen) != i.supported
        ],
    }

"""Sentiment classifiers against a hand-labelled pt-BR set: accuracy, macro-F1, strong-negative recall, speed.

    python -m bench.sentiment [--out bench/sentiment_results.json] [--only leia] [--data …jsonl]

The set (bench/data/sentiment_citizens_ptbr.jsonl) holds citizens' messages to a city hall with a label (negative,
neutral, positive) and whether the message is strongly negative (the handoff trigger). The LLM runs on the
configured chat model (the embedded one by default).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from assistant.agent_aids.sentiment import (
    LABELS,
    LexiconSentiment,
    LLMSentiment,
    ScreenedSentiment,
    SentimentClassifier,
)

DATA = Path(__file__).parent / "data" / "sentiment_citizens_ptbr.jsonl"


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(classifier: SentimentClassifier, rows: list[dict[str, Any]]) -> dict[str, Any]:
    predicted = []
    started = time.perf_counter()
    for row in rows:
        predicted.append(classifier.classify(row["text"]))
    elapsed = time.perf_counter() - started
    correct = sum(1 for row, p in zip(rows, predicted, strict=True) if p.label == row["label"])
    f1s = {}
    for label in LABELS:
        tp = sum(1 for r, p in zip(rows, predicted, strict=True) if p.label == label and r["label"] == label)
        fp = sum(1 for r, p in zip(rows, predicted, strict=True) if p.label == label and r["label"] != label)
        fn = sum(1 for r, p in zip(rows, predicted, strict=True) if p.label != label and r["label"] == label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s[label] = round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0
    strong_true = [bool(r["strong"]) for r in rows]
    strong_pred = [p.strong for p in predicted]
    tp = sum(1 for t, p in zip(strong_true, strong_pred, strict=True) if t and p)
    return {
        "classifier": classifier.name,
        "messages": len(rows),
        "accuracy": round(correct / len(rows), 3),
        "macro_f1": round(sum(f1s.values()) / len(f1s), 3),
        "f1": f1s,
        "strong_negative": {
            "labelled": sum(strong_true),
            "flagged": sum(strong_pred),
            "recall": round(tp / sum(strong_true), 3) if sum(strong_true) else None,
            "precision": round(tp / sum(strong_pred), 3) if sum(strong_pred) else None,
        },
        "ms_per_message": round(1000 * elapsed / len(rows), 2),
        "errors": [
            {"id": r["id"], "label": r["label"], "predicted": p.label}
            for r, p in zip(rows, predicted, strict=True)
            if p.label != r["label"]
        ][:40],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/sentiment_results.json"))
    parser.add_argument("--only", choices=["leia", "llm"], default=None)
    parser.add_argument("--data", type=Path, default=DATA, help="a labelled set (held out: sentiment_ptbr.jsonl)")
    args = parser.parse_args()
    rows = load(args.data)
    results = []
    if args.only in (None, "leia"):
        results.append(evaluate(LexiconSentiment(), rows))
    if args.only in (None, "llm"):
        from atende.services import build_chat_model
        from core.settings import Settings

        settings = Settings(environment="development")  # a measurement, never a deployment
        model = build_chat_model(settings)
        model.warm_up()
        results.append({**evaluate(LLMSentiment(model), rows), "model": model.model_id})
        screened = ScreenedSentiment(LexiconSentiment(), LLMSentiment(model))
        results.append({**evaluate(screened, rows), "model": model.model_id})
    args.out.write_text(json.dumps({"results": results}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for r in results:
        print(
            f"{r['classifier']}: accuracy {r['accuracy']}, macro-F1 {r['macro_f1']}, strong recall "
            f"{r['strong_negative']['recall']} precision {r['strong_negative']['precision']}, "
            f"{r['ms_per_message']} ms/message"
        )


if __name__ == "__main__":
    main()

"""Handoff translation on the configured chat model: latency, and a loose quality check by key terms.

    python -m bench.translation [--out bench/translation_results.json] [--only text|json|remote]

The set (bench/data/translation_messages.jsonl) holds short citizens' messages in English and Spanish to be read
in Portuguese, and agents' replies in Portuguese to be sent in English or Spanish. Each row lists groups of key
terms; a translation passes when every group has one of its terms (accents and case ignored), which catches
answers instead of translations, dropped facts and lost numbers, not style. The language detector is checked on
the same rows. Options: plain-text output (`text`), JSON constrained by a grammar (`json`), and plain text with
personal data as placeholders, as a remote model gets it (`remote`, on the rows with personal data only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import unicodedata
from pathlib import Path
from typing import Any

from assistant.agent_aids.translation import LLMTranslator, TranslationError
from assistant.language import identify_language
from assistant.llm import ChatModel
from core.privacy import find_pii, mask

DATA = Path(__file__).parent / "data" / "translation_messages.jsonl"


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def passes(translation: str, expect: list[list[str]]) -> bool:
    folded = _fold(translation)
    return all(any(_fold(term) in folded for term in group) for group in expect)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def evaluate(name: str, translator: LLMTranslator, rows: list[dict[str, Any]]) -> dict[str, Any]:
    timings: list[float] = []
    results = []
    for row in rows:
        started = time.perf_counter()
        try:
            translation: str | None = translator.translate(row["text"], row["source"], row["target"])
            refused = None
        except TranslationError as exc:
            translation, refused = None, str(exc)
        ms = 1000 * (time.perf_counter() - started)
        timings.append(ms)
        results.append(
            {
                "id": row["id"],
                "ms": round(ms),
                "passes": translation is not None and passes(translation, row["expect"]),
                "translation": None if translation is None else mask(translation),
                "refused": refused,
            }
        )
    good = sum(1 for r in results if r["passes"])
    citizen = [r for r, row in zip(results, rows, strict=True) if row["target"] == "pt-BR"]
    return {
        "option": name,
        "messages": len(rows),
        "translated": sum(1 for r in results if r["translation"] is not None),
        "key_terms_pass": round(good / len(rows), 3),
        "key_terms_pass_citizen_to_agent": round(sum(1 for r in citizen if r["passes"]) / len(citizen), 3)
        if citizen
        else None,
        "mean_ms": round(statistics.fmean(timings)),
        "p95_ms": round(_p95(timings)),
        "max_ms": round(max(timings)),
        "rows": results,
    }


def detection(rows: list[dict[str, Any]]) -> dict[str, Any]:
    found = {row["id"]: identify_language(row["text"]) for row in rows}
    wrong = {rid: lang for rid, lang in found.items() if lang != next(r["source"] for r in rows if r["id"] == rid)}
    return {"messages": len(rows), "correct": len(rows) - len(wrong), "wrong": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/translation_results.json"))
    parser.add_argument("--only", choices=["text", "json", "remote"], default=None)
    args = parser.parse_args()
    rows = load()
    from atende.services import build_chat_model
    from core.settings import Settings

    settings = Settings(environment="development")  # a measurement, never a deployment
    model: ChatModel = build_chat_model(settings)
    model.warm_up()
    load_start = round(os.getloadavg()[0], 2)
    LLMTranslator(model).translate("Good morning, I need help, please.", "en", "pt-BR")  # load, fill the cache
    options: dict[str, tuple[LLMTranslator, list[dict[str, Any]]]] = {
        "text": (LLMTranslator(model), rows),
        "json": (LLMTranslator(model, constrained=True), rows),
        "remote": (LLMTranslator(model, llm_is_local=False), [r for r in rows if find_pii(r["text"])]),
    }
    results = [
        {**evaluate(name, translator, subset), "model": model.model_id}
        for name, (translator, subset) in options.items()
        if args.only in (None, name)
    ]
    report: dict[str, Any] = {
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},  # 2 cores, shared
        "detection": detection(rows),
        "results": results,
    }
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"detection: {report['detection']['correct']}/{report['detection']['messages']}")
    for r in results:
        print(
            f"{r['option']}: {r['translated']}/{r['messages']} translated, key terms {r['key_terms_pass']}, "
            f"mean {r['mean_ms']} ms, p95 {r['p95_ms']} ms"
        )


if __name__ == "__main__":
    main()

"""Export the turn log for evaluators, as JSON Lines or CSV."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, Literal, TextIO

from core.privacy import mask_data
from core.store import TURN_FIELDS, ConversationStore

ExportFormat = Literal["jsonl", "csv"]


def _csv_cell(value: Any) -> Any:
    # Lists of retrieved chunks and citations stay machine-readable inside one cell.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


_FREE_TEXT = ("user_text", "rewritten_query", "answer", "error")


def _remask(turn: dict[str, Any]) -> dict[str, Any]:
    # Turns were masked when written; masking the free text again applies kinds an administrator added since.
    # Ids, dates and document references are left alone: they identify no one and must stay exact.
    return {name: mask_data(value) if name in _FREE_TEXT else value for name, value in turn.items()}


def export_turns(
    store: ConversationStore,
    out: TextIO,
    since: datetime | None = None,
    until: datetime | None = None,
    fmt: ExportFormat = "jsonl",
) -> int:
    """Write the turns with `since <= created_at < until` to `out`; return how many were written."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}; expected 'jsonl' or 'csv'")
    turns = (_remask(turn) for turn in store.iter_turns(since, until))
    count = 0
    if fmt == "jsonl":
        for turn in turns:
            # Keep accents readable: the turn log is Portuguese text.
            out.write(json.dumps(turn, ensure_ascii=False) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(out, fieldnames=TURN_FIELDS, lineterminator="\n")
    writer.writeheader()
    for turn in turns:
        writer.writerow({name: _csv_cell(value) for name, value in turn.items()})
        count += 1
    return count

"""A learned reading of what a first message asks for, on top of the routing rules.

The rules (`assistant.routing`, `assistant.tools.intent`) are a precise first pass. Where they see only a
question for the knowledge base, an intent reader compares the message with labelled example messages
(`examples.yaml`) and says which intent the nearest ones agree on, or nothing. `assistant.intents.policy` decides
whether that may change what the assistant does (docs/decisions/0047-intent-reader.md).

Intents: "person" (asks for a person), "angry" (empathy and the offer of a person), "smalltalk", "knowledge",
"identity" (a CPF and a birth date), and "tool:<name>" (a request for that tool).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

EXAMPLES_PATH = Path(__file__).with_name("examples.yaml")
# Where an example was written for coverage rather than taken from an evaluation suite.
WRITTEN = "written"


@dataclass(frozen=True)
class Example:
    """A message labelled with its intent; `source` is the suite it comes from, or "written"."""

    text: str
    intent: str
    source: str = WRITTEN


@dataclass(frozen=True)
class IntentGuess:
    """What a reader makes of a message: an intent, or None when the examples do not agree enough."""

    intent: str | None
    # How many of the nearest examples carry the intent, out of how many were looked at.
    agreement: int = 0
    nearest: int = 0
    # Cosine similarity of the nearest example carrying the intent, and how much nearer it is than the nearest
    # example of any other intent.
    similarity: float = 0.0
    margin: float = 0.0
    votes: Mapping[str, int] = field(default_factory=dict)


NO_GUESS = IntentGuess(None)


class IntentReader(Protocol):
    """Reads a citizen's message into an intent; loads what it needs in `warm_up`, never on construction."""

    def warm_up(self) -> None: ...

    def read(self, text: str) -> IntentGuess: ...


def load_examples(path: Path = EXAMPLES_PATH, *, leave_out: Collection[str] = ()) -> list[Example]:
    """The labelled examples of `path`, without those from the sources in `leave_out` (cross-validation)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    intents = raw.get("intents") if isinstance(raw, dict) else None
    if not isinstance(intents, dict):
        raise ValueError(f"{path}: expected a mapping 'intents: {{intent: {{source: [messages]}}}}'")
    examples: list[Example] = []
    for intent, sources in intents.items():
        if not isinstance(sources, dict):
            raise ValueError(f"{path}: intent {intent!r} must map sources to lists of messages")
        for source, texts in sources.items():
            if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
                raise ValueError(f"{path}: {intent}/{source} must be a list of non-empty messages")
            if source in leave_out:
                continue
            examples.extend(Example(t, str(intent), str(source)) for t in texts)
    return examples


def example_sources(path: Path = EXAMPLES_PATH) -> list[str]:
    """Every source the examples of `path` come from, in order of first appearance."""
    return list(dict.fromkeys(e.source for e in load_examples(path)))


__all__ = [
    "EXAMPLES_PATH",
    "NO_GUESS",
    "WRITTEN",
    "Example",
    "IntentGuess",
    "IntentReader",
    "example_sources",
    "load_examples",
]

"""A test double for the intent reader; it ships in the package so tests and evaluation share it."""

from __future__ import annotations

from collections.abc import Mapping

from assistant.intents import IntentGuess


class UnexpectedRead(AssertionError):
    """The code under test asked the reader about a message the test did not script."""


class ScriptedIntentReader:
    """Answers each scripted message with its intent (None: the examples do not agree); any other message fails.

    `reads` keeps every message asked about, so a test can also check that the reader was not consulted.
    """

    def __init__(self, guesses: Mapping[str, str | None]) -> None:
        self.guesses = dict(guesses)
        self.reads: list[str] = []
        self.warmed = False

    def warm_up(self) -> None:
        self.warmed = True

    def read(self, text: str) -> IntentGuess:
        self.reads.append(text)
        if text not in self.guesses:
            raise UnexpectedRead(f"unscripted message for the intent reader: {text!r}")
        intent = self.guesses[text]
        return IntentGuess(intent, agreement=5, nearest=5) if intent is not None else IntentGuess(None)

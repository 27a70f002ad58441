"""Topics that need a person: a knowledge article or a tool whose cases a team must handle, set per topic.

`ATENDE_HANDOFF_TOPICS={"article:divida-ativa": {"team": "tributos"}, "tool:payment_second_copy": {"skill": "x"}}`:
when the bot's reply cites that article, or its turn called that tool successfully, the citizen still gets the
answer and the conversation is queued for the rule's team (the default one when the rule names none), with the
rule's skill as a routing requirement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

PREFIXES: Final = ("article:", "tool:")


@dataclass(frozen=True, slots=True)
class TopicRule:
    team: str | None = None
    skill: str | None = None


@dataclass(frozen=True, slots=True)
class TopicMatch:
    key: str  # "article:<doc_id>" or "tool:<name>"
    rule: TopicRule

    @property
    def reason(self) -> str:
        return f"topic:{self.key}"


class TopicRules:
    def __init__(self, rules: Mapping[str, TopicRule] | None = None) -> None:
        rules = dict(rules or {})
        bad = [key for key in rules if not key.startswith(PREFIXES) or key in PREFIXES]
        if bad:
            raise ValueError(f"handoff topics must be 'article:<id>' or 'tool:<name>', got {sorted(bad)}")
        self._rules = rules

    @classmethod
    def parse(cls, raw: Mapping[str, Mapping[str, str]]) -> TopicRules:
        return cls(
            {key: TopicRule(value.get("team") or None, value.get("skill") or None) for key, value in raw.items()}
        )

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, cited: Iterable[str], tools: Iterable[str] = ()) -> TopicMatch | None:
        """The first rule for a tool the turn called, else for an article the reply cited (tools are the more
        specific signal: the citizen asked to act, not only to know)."""
        for key in [f"tool:{name}" for name in tools] + [f"article:{doc_id}" for doc_id in cited]:
            if key in self._rules:
                return TopicMatch(key, self._rules[key])
        return None

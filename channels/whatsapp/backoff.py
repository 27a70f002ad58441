"""How long to wait before trying again."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(attempt: int, base_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: base·2^(attempt-1), capped at `max_s`, scaled by a factor in [0.5, 1)
    so that workers retrying together drift apart."""
    if base_s <= 0:
        return 0.0
    return min(max_s, base_s * 2.0 ** max(0, attempt - 1)) * (0.5 + rng() / 2)

"""An optional proof-of-work step after a burst from one client: the hook, a no-op default and a hashcash puzzle.

After `burst` requests in a minute from one IP, further ones must carry the solution of a puzzle the server
issued: a counter such that SHA-256("<nonce>:<counter>") starts with `difficulty` zero bits. A browser solves
it in a second or two (static/pow.js); a script creating thousands of conversations pays that for each one.
Nonces are signed and expire, so any app process checks them without shared state, and each is accepted once
(the rate limiter's store remembers it, Redis when several processes run).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.ratelimit import RateLimiter

HEADER = "X-Atende-Proof"  # "<nonce>:<counter>"


@dataclass(frozen=True)
class Puzzle:
    nonce: str
    difficulty: int

    def as_dict(self) -> dict[str, Any]:
        return {"algorithm": "sha256", "nonce": self.nonce, "difficulty": self.difficulty, "header": HEADER}


class Challenge(Protocol):
    def check(self, client: str, proof: str | None) -> Puzzle | None:
        """Count one request from `client`; None lets it through, a Puzzle must be solved first (428)."""
        ...


class NoChallenge:
    """The default: nobody is asked to solve anything."""

    def check(self, client: str, proof: str | None) -> Puzzle | None:
        return None


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solve(nonce: str, difficulty: int) -> str:
    """The counter that solves a puzzle (what pow.js does in the browser; tests and scripts use this one)."""
    counter = 0
    while leading_zero_bits(hashlib.sha256(f"{nonce}:{counter}".encode()).digest()) < difficulty:
        counter += 1
    return str(counter)


class HashcashChallenge:
    def __init__(
        self,
        limiter: RateLimiter,
        key: bytes,
        *,
        burst: int,
        difficulty: int,
        ttl_s: float = 300.0,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = limiter
        self._key = key
        self.burst = burst
        self.difficulty = difficulty
        self._ttl_s = ttl_s
        self._window_s = window_s
        self._clock = clock

    def check(self, client: str, proof: str | None) -> Puzzle | None:
        within = self._limiter.hit(f"challenge:ip:{client}", limit=self.burst, window_s=self._window_s).allowed
        if within or (proof is not None and self._accepts(proof)):
            return None
        return self.issue()

    def issue(self) -> Puzzle:
        body = f"{int(self._clock() + self._ttl_s)}.{secrets.token_hex(12)}"
        return Puzzle(f"{body}.{self._sign(body)}", self.difficulty)

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def _accepts(self, proof: str) -> bool:
        nonce, _, counter = proof.strip().rpartition(":")
        body, _, signature = nonce.rpartition(".")
        expires, _, _ = body.partition(".")
        if not (counter.isdigit() and len(counter) <= 20 and expires.isdigit()):
            return False
        if not hmac.compare_digest(signature, self._sign(body)) or int(expires) < self._clock():
            return False
        digest = hashlib.sha256(f"{nonce}:{counter}".encode()).digest()
        if leading_zero_bits(digest) < self.difficulty:
            return False
        # One request per solved puzzle: a solution replayed from a script would otherwise be a free pass.
        used = hashlib.sha256(nonce.encode()).hexdigest()
        return self._limiter.hit(f"challenge:used:{used}", limit=1, window_s=self._ttl_s).allowed

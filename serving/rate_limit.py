"""Requests-per-minute limits per named API key: token buckets, shared by every replica of the app.

A key with a limit of R may send R requests at once and then R per minute (a bucket of R tokens
refilled at R/60 per second). Over it, the answer is 429 with Retry-After: the seconds until the
next token. The buckets live in one Ray actor per application (`shared_limiter`), so the limit holds
for the endpoint as a whole, however many replicas serve it; only keys that have a limit pay the
actor call. If the actor cannot answer within ACQUIRE_TIMEOUT_S the request is let through and the
failure logged: a rate limit sheds load, it is not an access control (the key check is).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Awaitable, Callable, Mapping

logger = logging.getLogger("ray.serve")

ACQUIRE_TIMEOUT_S = 1.0
Acquire = Callable[[str], Awaitable[float]]


class TokenBucket:
    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> float:
        """0.0 if a request may go now (and counts it), else the seconds until it may."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
        self._at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per limited key name; names without a limit are never limited."""

    def __init__(self, per_minute: Mapping[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets = {name: TokenBucket(rpm, clock) for name, rpm in per_minute.items()}

    def limited(self, name: str) -> bool:
        return name in self._buckets

    def acquire(self, name: str) -> float:
        bucket = self._buckets.get(name)
        return bucket.take() if bucket else 0.0


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


class SharedRateLimiter:
    """The Ray actor holding the buckets (its methods run one at a time: no lock needed)."""

    def __init__(self, per_minute: dict[str, int]) -> None:
        self._limiter = RateLimiter(per_minute)

    def acquire(self, name: str) -> float:
        return self._limiter.acquire(name)


def shared_limiter(app_name: str, per_minute: Mapping[str, int]) -> Acquire:
    """An async `acquire(name)` backed by the application's one limiter actor (created by the first
    replica that asks; later replicas get the same one by name)."""
    import ray

    # The limits are part of the name: after a config change, replicas of the new version count
    # in a bucket of the new limits instead of the old actor's.
    suffix = "-".join(f"{n}.{r}" for n, r in sorted(per_minute.items()))
    actor = ray.remote(SharedRateLimiter).options(
        name=f"{app_name}-rate-limiter-{suffix}"[:200], namespace="serve", get_if_exists=True,
        lifetime="detached", num_cpus=0, max_restarts=-1, max_task_retries=0,
    ).remote(dict(per_minute))

    async def acquire(name: str) -> float:
        try:
            return await asyncio.wait_for(actor.acquire.remote(name), ACQUIRE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - fail open, loudly (see the module docstring)
            logger.warning("rate limiter unavailable (%s); request of key %r let through", type(exc).__name__, name)
            return 0.0

    return acquire


def local_limiter(per_minute: Mapping[str, int], clock: Callable[[], float] = time.monotonic) -> Acquire:
    """The same buckets in this process (tests, and the vLLM 0.16 route driver)."""
    limiter = RateLimiter(per_minute, clock)

    async def acquire(name: str) -> float:
        return limiter.acquire(name)

    return acquire

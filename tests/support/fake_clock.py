"""A clock for code that takes `clock` and `sleep` callables: sleeping advances it, instantly."""

from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

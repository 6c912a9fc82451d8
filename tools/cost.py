"""Cost per token from a measured throughput and the on-demand price of the instances serving it.

The prices are a field of each accelerator preset (config/presets.py), so every preset has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.presets import PRESETS, Price


def price_of(preset: str) -> Price:
    if preset not in PRESETS:
        raise ValueError(f"--preset: no price for {preset!r}; known: {sorted(PRESETS)} "
                         f"(or give --price-per-hour)")
    return PRESETS[preset].price


def hourly_price(preset: str) -> float:
    return price_of(preset).usd_per_hour


def usd_per_million_output_tokens(output_tokens_per_s: float, usd_per_hour: float, instances: int = 1) -> float | None:
    """What a million generated tokens cost at this throughput, with `instances` nodes billed."""
    if output_tokens_per_s <= 0:
        return None
    return usd_per_hour * instances / (output_tokens_per_s * 3600) * 1_000_000


@dataclass(frozen=True)
class LevelCost:
    concurrency: int
    output_tokens_per_s: float
    ttft_p95_s: float | None
    usd_per_million: float | None
    within_budget: bool


def cost_table(levels: list[tuple[int, float, float | None]], usd_per_hour: float, *, instances: int = 1,
               ttft_budget_s: float) -> list[LevelCost]:
    """levels: (concurrency, overall output tokens/s, TTFT p95 in s) per run."""
    return [
        LevelCost(c, tps, p95, usd_per_million_output_tokens(tps, usd_per_hour, instances),
                  p95 is not None and p95 <= ttft_budget_s)
        for c, tps, p95 in levels
    ]


def cheapest_within_budget(table: list[LevelCost]) -> LevelCost | None:
    """The concurrency with the lowest $ per 1M output tokens whose TTFT p95 stays within budget."""
    candidates = [row for row in table if row.within_budget and row.usd_per_million is not None]
    return min(candidates, key=lambda row: row.usd_per_million, default=None)

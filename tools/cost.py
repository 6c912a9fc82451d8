"""Cost per token from a measured throughput and the on-demand price of the instances serving it.

The price table is kept here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.presets import PRESETS

# On-demand Linux price in USD per instance-hour, region us-east-1.
# Source: AWS EC2 On-Demand pricing page (aws.amazon.com/ec2/pricing/on-demand/), figures as given in
# the project's issue 5, recorded 2026-11-26 (not re-read online from this machine). Other regions
# differ; pass --price-per-hour to the benchmark to use your own (e.g. a Savings Plan rate).
PRICES_AS_OF = "2026-11-26"
PRICES_REGION = "us-east-1"
PRICES_SOURCE = "AWS EC2 On-Demand pricing (Linux), https://aws.amazon.com/ec2/pricing/on-demand/"
ON_DEMAND_USD_PER_HOUR = {
    "inf2.xlarge": 0.758,
    "inf2.8xlarge": 1.97,
    "inf2.24xlarge": 6.49,
    "inf2.48xlarge": 12.981,
    "trn1.2xlarge": 1.34,
    "trn1.32xlarge": 21.50,
}
assert set(ON_DEMAND_USD_PER_HOUR) == set(PRESETS), "every accelerator preset needs a price, and only those"


def hourly_price(preset: str) -> float:
    if preset not in ON_DEMAND_USD_PER_HOUR:
        raise ValueError(f"--preset: no price for {preset!r}; known: {sorted(ON_DEMAND_USD_PER_HOUR)} "
                         f"(or give --price-per-hour)")
    return ON_DEMAND_USD_PER_HOUR[preset]


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

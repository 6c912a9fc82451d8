"""Cost per 1M output tokens, checked against figures worked out by hand."""

import pytest

from config.presets import PRESETS
from tools import cost


def test_price_table_matches_the_published_on_demand_prices():
    assert {name: cost.hourly_price(name) for name in PRESETS} == {
        "inf2.xlarge": 0.758, "inf2.8xlarge": 1.97, "inf2.24xlarge": 6.49, "inf2.48xlarge": 12.981,
        "trn1.2xlarge": 1.34, "trn1.32xlarge": 21.50,
    }
    for name in PRESETS:
        price = cost.price_of(name)
        assert price.as_of and price.region == "us-east-1" and "aws.amazon.com" in price.source


@pytest.mark.parametrize("tokens_per_s, usd_per_hour, instances, expected", [
    # 1.97 $/h / (100 tok/s * 3600 s/h) * 1e6 = 5.47222...
    (100.0, 1.97, 1, 5.472222),
    # two instances at the same total throughput cost twice as much per token
    (100.0, 1.97, 2, 10.944444),
    # inf2.48xlarge at 1000 tok/s: 12.981 / 3.6e6 * 1e6 = 3.60583...
    (1000.0, 12.981, 1, 3.605833),
    # inf2.xlarge at 20 tok/s: 0.758 / 72000 * 1e6 = 10.52777...
    (20.0, 0.758, 1, 10.527778),
])
def test_usd_per_million_output_tokens(tokens_per_s, usd_per_hour, instances, expected):
    assert cost.usd_per_million_output_tokens(tokens_per_s, usd_per_hour, instances) == pytest.approx(expected, abs=1e-6)


def test_no_throughput_has_no_cost_figure():
    assert cost.usd_per_million_output_tokens(0.0, 1.97) is None


def test_cheapest_level_respects_the_ttft_budget():
    # concurrency 16 is cheapest per token but breaks a 2 s TTFT p95 budget, so 8 wins.
    levels = [(1, 50.0, 0.4), (4, 180.0, 0.9), (8, 300.0, 1.8), (16, 400.0, 3.5)]
    table = cost.cost_table(levels, 1.97, ttft_budget_s=2.0)
    assert [row.within_budget for row in table] == [True, True, True, False]
    assert table[2].usd_per_million == pytest.approx(1.97 / (300 * 3600) * 1e6)  # 1.824074
    best = cost.cheapest_within_budget(table)
    assert best.concurrency == 8 and best.usd_per_million == pytest.approx(1.824074, abs=1e-6)


def test_no_level_within_budget():
    table = cost.cost_table([(1, 50.0, 2.5), (2, 90.0, None)], 1.97, ttft_budget_s=2.0)
    assert cost.cheapest_within_budget(table) is None


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--preset: no price for 'p5.48xlarge'.*--price-per-hour"):
        cost.hourly_price("p5.48xlarge")

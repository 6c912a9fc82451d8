"""The benchmark end to end against local mode: files, every metric, ordered percentiles, counts, plot."""

import json
import struct
from pathlib import Path

import pytest

from tests.support.local_server import LOCAL_MAX_TOKENS
from tools.bench import metrics as m
from tools.bench import runner as r
from tools.bench.__main__ import main
from tools.bench.report import llmperf_basename

pytestmark = pytest.mark.serving

CONCURRENCY = (1, 4)
PER_USER = 2
STATS = ("mean", "min", "max", "stddev")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def bench_run(local_endpoint, tmp_path_factory):
    results = tmp_path_factory.mktemp("bench")
    args = ["--base-url", local_endpoint.base_url, "--model", local_endpoint.model, "--results-dir", str(results),
            "--concurrency", ",".join(map(str, CONCURRENCY)), "--requests-per-user", str(PER_USER),
            "--mean-input-tokens", "128", "--stddev-input-tokens", "8", "--mean-output-tokens", "16",
            "--stddev-output-tokens", "2", "--timeout", "300", "--no-progress"]
    if local_endpoint.api_key:
        args += ["--api-key", local_endpoint.api_key]
    assert main(args) == 0
    (run_dir,) = list(results.iterdir())
    return run_dir


def test_llmperf_files_per_concurrency(bench_run, local_endpoint, capsys):
    label = next(p for p in bench_run.iterdir() if p.is_dir())
    for c in CONCURRENCY:
        stem = llmperf_basename(local_endpoint.model, 128, 16)
        summary = json.loads((label / f"concurrency-{c}" / f"{stem}_summary.json").read_text())
        responses = json.loads((label / f"concurrency-{c}" / f"{stem}_individual_responses.json").read_text())
        assert summary["num_concurrent_requests"] == c and summary["version"] == "2023-08-31"
        assert summary["token_count_source"].startswith("tokenizer:"), "local mode's tokenizer should be found"
        # every metric, every statistic, percentiles in order and within [min, max]
        for key in m.SUMMARIZED:
            q = [summary[f"results_{key}_quantiles_p{p}"] for p in m.QUANTILES]
            assert all(v is not None for v in q), key
            assert q == sorted(q), f"{key} percentiles out of order: {q}"
            low, high = summary[f"results_{key}_min"], summary[f"results_{key}_max"]
            assert low <= q[0] and q[-1] <= high and low <= summary[f"results_{key}_mean"] <= high
            assert summary[f"results_{key}_stddev"] >= 0
        # counts add up
        assert summary["results_num_requests_started"] == len(responses) == c * PER_USER
        assert summary["results_num_completed_requests"] + summary["results_number_errors"] == len(responses)
        assert summary["results_number_errors"] == 0, [x[r.ERROR_MSG] for x in responses if x[r.ERROR_CODE]]
        outputs = [x[r.NUM_OUTPUT_TOKENS] for x in responses]
        assert summary["results_number_output_tokens_mean"] == pytest.approx(sum(outputs) / len(outputs))
        assert summary["results_mean_output_throughput_token_per_s"] == pytest.approx(
            sum(outputs) / summary["duration_s"])
        assert summary["results_num_completed_requests_per_min"] == pytest.approx(
            len(responses) / summary["duration_s"] * 60)
        for x in responses:
            assert x[r.NUM_TOTAL_TOKENS] == x[r.NUM_INPUT_TOKENS] + x[r.NUM_OUTPUT_TOKENS]
            assert 0 < x[r.TTFT] <= x[r.E2E_LAT]
            assert x["usage_completion_tokens"] <= x["max_tokens"]
            assert x[r.REQ_OUTPUT_THROUGHPUT] == pytest.approx(x[r.NUM_OUTPUT_TOKENS] / x[r.E2E_LAT])


def test_sweep_json_cost_and_plot(bench_run):
    sweep = json.loads((bench_run / "sweep.json").read_text())["sweeps"][0]
    assert [lv["concurrency"] for lv in sweep["levels"]] == list(CONCURRENCY)
    cost = sweep["cost"]
    for row, level in zip(cost["levels"], sweep["levels"]):
        tps = level["results"][m.OUTPUT_THROUGHPUT]
        assert row["usd_per_million"] == pytest.approx(cost["usd_per_hour"] / (tps * 3600) * 1e6)
    width, height = _png_size(bench_run / "sweep.png")
    assert width >= 800 and height >= 300


def test_compare_mode_ratios(local_endpoint, tmp_path, capsys):
    """Compare mode end to end (both sides local mode here: the pipeline, not the servers, is tested)."""
    args = ["--base-url", local_endpoint.base_url, "--compare-base-url", local_endpoint.base_url,
            "--model", local_endpoint.model, "--compare-model", local_endpoint.model,
            "--label", "first", "--compare-label", "second", "--results-dir", str(tmp_path),
            "--concurrency", "2", "--requests-per-user", "1", "--mean-input-tokens", "64",
            "--mean-output-tokens", "8", "--stddev-output-tokens", "1", "--no-progress", "--overhead-rounds", "1"]
    if local_endpoint.api_key:
        args += ["--api-key", local_endpoint.api_key, "--compare-api-key", local_endpoint.api_key]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Comparison: A = first, B = second" in out
    (run_dir,) = list(tmp_path.iterdir())
    data = json.loads((run_dir / "sweep.json").read_text())
    assert [s["label"] for s in data["sweeps"]] == ["first", "second"]
    rows = {row["metric"]: row for row in data["comparison"]}
    tps = rows["output tokens/s"]
    assert tps["ratio_b_over_a"] == pytest.approx(tps["b"] / tps["a"])
    assert (run_dir / "first").is_dir() and (run_dir / "second").is_dir()
    # the serving team's alternating-round check ran against the same two endpoints
    check = data["overhead_check"]
    assert "skipped" not in check, check
    assert check["failed"] == 0 and check["throughput_ratio"] > 0
    assert check["throughput_ratio"] == pytest.approx(check["ray_tokens_per_s"] / check["vllm_tokens_per_s"], abs=0.01)
    assert "Alternating-round overhead check" in out


def test_a_level_stops_at_its_timeout_and_keeps_what_finished(local_endpoint):
    import asyncio

    from tools.bench.runner import run_level
    from tools.bench.workload import PreparedRequest, TokenCounter
    from tools.endpoint import Endpoint

    client = Endpoint(local_endpoint.base_url, local_endpoint.api_key or "EMPTY", None).async_client(timeout=60)
    # Long answers (the tiny model never stops early) against a 1.5 s budget: the run must stop on time.
    requests = [PreparedRequest("Count slowly. " * 20, LOCAL_MAX_TOKENS, None) for _ in range(4)]

    async def run():
        try:
            return await run_level(client, local_endpoint.model, requests, 1, TokenCounter.usage_only(), timeout_s=1.5)
        finally:
            await client.close()

    level = asyncio.run(run())
    assert level.timed_out
    assert level.duration_s < 10
    assert level.unfinished >= 1 and len(level.records) + level.unfinished == len(requests)

"""LLMPerf's statistics: quantiles (linear interpolation), sample stddev, errors and throughput."""

import pytest

from tools.bench import metrics as m
from tools.bench import runner as r
from tools.bench.report import llmperf_basename


def test_describe_matches_hand_computed_figures():
    stats = m.describe([1.0, 2.0, 3.0, 4.0])
    # linear interpolation at rank (n-1)*q: p25 -> 0.75 -> 1.75, p90 -> 2.7 -> 3.7, p99 -> 2.97 -> 3.97
    assert stats["quantiles"] == pytest.approx({"p25": 1.75, "p50": 2.5, "p75": 3.25, "p90": 3.7, "p95": 3.85,
                                                "p99": 3.97})
    assert stats["mean"] == 2.5 and stats["min"] == 1.0 and stats["max"] == 4.0
    assert stats["stddev"] == pytest.approx(1.2909944)  # sample stddev: sqrt(5/3)


def test_describe_single_and_empty():
    assert m.describe([2.0])["stddev"] == 0.0
    empty = m.describe([])
    assert empty["mean"] is None and set(empty["quantiles"]) == {"p25", "p50", "p75", "p90", "p95", "p99"}


def _ok(output_tokens, ttft=0.1):
    return {r.ERROR_CODE: None, r.ERROR_MSG: "", r.INTER_TOKEN_LAT: 0.01, r.TTFT: ttft, r.E2E_LAT: 1.0,
            r.REQ_OUTPUT_THROUGHPUT: float(output_tokens), r.NUM_INPUT_TOKENS: 500, r.NUM_OUTPUT_TOKENS: output_tokens,
            r.NUM_TOTAL_TOKENS: 500 + output_tokens}


def test_summarize_counts_errors_and_overall_throughput():
    records = [_ok(100), _ok(200), {r.ERROR_CODE: 503, r.ERROR_MSG: "busy"}, {r.ERROR_CODE: 503, r.ERROR_MSG: "x"}]
    results = m.summarize(records, duration_s=10.0)
    assert results[m.NUM_REQ_STARTED] == 4
    assert results[m.NUM_COMPLETED] == 2 and results[m.NUM_ERRORS] == 2
    assert results[m.ERROR_RATE] == 0.5
    assert results[m.ERROR_CODE_FREQ] == "{503: 2}"
    assert results[m.OUTPUT_THROUGHPUT] == pytest.approx(30.0)  # 300 tokens / 10 s; errors excluded
    assert results[m.COMPLETED_PER_MIN] == pytest.approx(12.0)  # 2 / 10 s * 60
    assert results[r.NUM_OUTPUT_TOKENS]["mean"] == 150.0


def test_flat_keys_are_llmperfs():
    flat = m.flatten({"results": m.summarize([_ok(10)], 1.0)})
    for key in ("results_ttft_s_quantiles_p99", "results_inter_token_latency_s_stddev",
                "results_end_to_end_latency_s_mean", "results_request_output_throughput_token_per_s_max",
                "results_number_input_tokens_min", "results_number_output_tokens_quantiles_p25",
                "results_number_errors", "results_mean_output_throughput_token_per_s",
                "results_num_completed_requests_per_min", "results_error_rate", "results_num_requests_started"):
        assert key in flat


def test_llmperf_file_stem():
    assert llmperf_basename("NousResearch/Meta-Llama-3-8B-Instruct", 512, 245) == \
        "NousResearch-Meta-Llama-3-8B-Instruct_512_245"
    assert llmperf_basename("01-ai/Yi-1.5-34B-Chat", 550, 150) == "01-ai-Yi-1-5-34B-Chat_550_150"

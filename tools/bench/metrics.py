"""LLMPerf's summary of one run: per-metric quantiles and moments, errors and overall throughput.

Same keys and statistics as LLMPerf's metrics_summary (pandas' linear-interpolation quantiles and
sample standard deviation), computed with numpy.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tools.bench import runner as r

SUMMARIZED = (r.INTER_TOKEN_LAT, r.TTFT, r.E2E_LAT, r.REQ_OUTPUT_THROUGHPUT, r.NUM_INPUT_TOKENS, r.NUM_OUTPUT_TOKENS)
QUANTILES = (25, 50, 75, 90, 95, 99)
NUM_REQ_STARTED = "num_requests_started"
ERROR_RATE = "error_rate"
NUM_ERRORS = "number_errors"
ERROR_CODE_FREQ = "error_code_frequency"
OUTPUT_THROUGHPUT = "mean_output_throughput_token_per_s"
NUM_COMPLETED = "num_completed_requests"
COMPLETED_PER_MIN = "num_completed_requests_per_min"


def describe(values: list[float]) -> dict:
    """quantiles p25..p99, mean, min, max, stddev; all None when nothing completed."""
    if not values:
        return {"quantiles": {f"p{q}": None for q in QUANTILES}, "mean": None, "min": None, "max": None,
                "stddev": None}
    data = np.asarray(values, dtype=float)
    return {
        "quantiles": {f"p{q}": float(np.percentile(data, q)) for q in QUANTILES},
        "mean": float(data.mean()),
        "min": float(data.min()),
        "max": float(data.max()),
        "stddev": float(data.std(ddof=1)) if len(data) > 1 else 0.0,
    }


def summarize(records: list[dict], duration_s: float) -> dict:
    ok = [rec for rec in records if rec[r.ERROR_CODE] is None]
    errors = [rec[r.ERROR_CODE] for rec in records if rec[r.ERROR_CODE] is not None]
    results = {key: describe([rec[key] for rec in ok]) for key in SUMMARIZED}
    results[NUM_REQ_STARTED] = len(records)
    results[ERROR_RATE] = len(errors) / len(records) if records else 0.0
    results[NUM_ERRORS] = len(errors)
    results[ERROR_CODE_FREQ] = str(dict(Counter(errors)))
    results[OUTPUT_THROUGHPUT] = sum(rec[r.NUM_OUTPUT_TOKENS] for rec in ok) / duration_s if duration_s > 0 else 0.0
    results[NUM_COMPLETED] = len(ok)
    results[COMPLETED_PER_MIN] = len(ok) / duration_s * 60 if duration_s > 0 else 0.0
    return results


def flatten(data: dict, parent: str = "") -> dict:
    """LLMPerf's flat summary keys: results_ttft_s_quantiles_p50 and so on."""
    flat = {}
    for key, value in data.items():
        name = f"{parent}_{key}" if parent else key
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat

"""Compare mode: the same sweep against two endpoints, figures and B/A ratios side by side."""

from __future__ import annotations

from typing import TextIO

from tools.bench import metrics as m
from tools.bench import runner as r

# (row name, how to read it from a level's results)
COMPARED = (
    ("TTFT p50 (s)", lambda res: res[r.TTFT]["quantiles"]["p50"]),
    ("TTFT p95 (s)", lambda res: res[r.TTFT]["quantiles"]["p95"]),
    ("inter-token p50 (s)", lambda res: res[r.INTER_TOKEN_LAT]["quantiles"]["p50"]),
    ("inter-token p95 (s)", lambda res: res[r.INTER_TOKEN_LAT]["quantiles"]["p95"]),
    ("end-to-end p50 (s)", lambda res: res[r.E2E_LAT]["quantiles"]["p50"]),
    ("output tokens/s", lambda res: res[m.OUTPUT_THROUGHPUT]),
    ("requests/min", lambda res: res[m.COMPLETED_PER_MIN]),
    ("errored requests", lambda res: res[m.NUM_ERRORS]),
)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a == 0:
        return None
    return b / a


def compare_sweeps(a: dict, b: dict) -> list[dict]:
    """One row per (concurrency, metric) that both sweeps ran: a, b and b/a."""
    b_levels = {lv["concurrency"]: lv for lv in b["levels"]}
    rows = []
    for level_a in a["levels"]:
        level_b = b_levels.get(level_a["concurrency"])
        if level_b is None:
            continue
        for name, read in COMPARED:
            va, vb = read(level_a["results"]), read(level_b["results"])
            rows.append({"concurrency": level_a["concurrency"], "metric": name, "a": va, "b": vb,
                         "ratio_b_over_a": ratio(va, vb)})
    return rows


def print_comparison(rows: list[dict], label_a: str, label_b: str, out: TextIO) -> None:
    print(f"\nComparison: A = {label_a}, B = {label_b} (ratio B/A; for latencies > 1 means B is slower)", file=out)
    print(f"  {'c':>3}  {'metric':<22}{'A':>12}{'B':>12}{'B/A':>8}", file=out)
    for row in rows:
        va, vb, rt = row["a"], row["b"], row["ratio_b_over_a"]
        print(f"  {row['concurrency']:>3}  {row['metric']:<22}{_fmt(va):>12}{_fmt(vb):>12}"
              f"{'-' if rt is None else f'{rt:.2f}':>8}", file=out)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)

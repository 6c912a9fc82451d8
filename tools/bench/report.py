"""What a sweep leaves behind: LLMPerf's two JSON files per run, a sweep JSON, a PNG plot, and the
tables printed to the terminal."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TextIO

from tools.bench import metrics as m
from tools.bench import runner as r

RESULTS_VERSION = "2023-08-31"  # LLMPerf's results format version, so its tooling reads these files


def llmperf_basename(model: str, mean_input: int, mean_output: int) -> str:
    """LLMPerf's file stem: model_in_out with every run of non-word characters turned into one '-'."""
    name = re.sub(r"[^\w\d-]+", "-", f"{model}_{mean_input}_{mean_output}")
    return re.sub(r"-{2,}", "-", name)


def write_run(out_dir: Path, metadata: dict, results: dict, records: list[dict]) -> tuple[Path, Path]:
    """<stem>_summary.json (flat, like LLMPerf) and <stem>_individual_responses.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = llmperf_basename(metadata["model"], metadata["mean_input_tokens"], metadata["mean_output_tokens"])
    summary = {"version": RESULTS_VERSION, "name": f"{stem}_summary", **metadata, "results": results,
               "timestamp": int(time.time())}
    summary_path = out_dir / f"{stem}_summary.json"
    responses_path = out_dir / f"{stem}_individual_responses.json"
    summary_path.write_text(json.dumps(m.flatten(summary), indent=4))
    responses_path.write_text(json.dumps(records, indent=4))
    return summary_path, responses_path


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_ROW_NAMES = {
    r.TTFT: "TTFT (s)",
    r.INTER_TOKEN_LAT: "inter-token latency (s)",
    r.E2E_LAT: "end-to-end latency (s)",
    r.REQ_OUTPUT_THROUGHPUT: "output tokens/s per request",
    r.NUM_INPUT_TOKENS: "input tokens",
    r.NUM_OUTPUT_TOKENS: "output tokens",
}


def print_level(label: str, concurrency: int, results: dict, *, duration_s: float, timed_out: bool,
                out: TextIO) -> None:
    cols = [f"p{q}" for q in m.QUANTILES] + ["mean", "min", "max", "stddev"]
    print(f"\n[{label}] concurrency {concurrency}: {results[m.NUM_COMPLETED]} completed, "
          f"{results[m.NUM_ERRORS]} errored {results[m.ERROR_CODE_FREQ] if results[m.NUM_ERRORS] else ''}"
          f"in {duration_s:.1f} s{' (TIMED OUT)' if timed_out else ''}", file=out)
    print(f"  {'':<28}" + "".join(f"{c:>9}" for c in cols), file=out)
    for key, name in _ROW_NAMES.items():
        stats = results[key]
        values = [stats["quantiles"][c] for c in cols[:6]] + [stats[c] for c in cols[6:]]
        digits = 1 if key in (r.NUM_INPUT_TOKENS, r.NUM_OUTPUT_TOKENS, r.REQ_OUTPUT_THROUGHPUT) else 3
        print(f"  {name:<28}" + "".join(f"{_fmt(v, digits):>9}" for v in values), file=out)
    print(f"  overall output tokens/s: {results[m.OUTPUT_THROUGHPUT]:.2f}   "
          f"completed requests/min: {results[m.COMPLETED_PER_MIN]:.2f}", file=out)


def plot_sweeps(sweeps: list[dict], path: Path) -> Path:
    """TTFT, inter-token latency and overall throughput against concurrency; one line per endpoint."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or in CI
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (
        ("Time to first token", "seconds", lambda lv: lv["results"][r.TTFT]),
        ("Inter-token latency", "seconds", lambda lv: lv["results"][r.INTER_TOKEN_LAT]),
    )
    for sweep in sweeps:
        levels = [lv for lv in sweep["levels"] if lv["results"][m.NUM_COMPLETED]]
        xs = [lv["concurrency"] for lv in levels]
        for ax, (title, unit, stats) in zip(axes, panels):
            ax.plot(xs, [stats(lv)["quantiles"]["p50"] for lv in levels], marker="o", label=f"{sweep['label']} p50")
            ax.plot(xs, [stats(lv)["quantiles"]["p95"] for lv in levels], marker="x", linestyle="--",
                    label=f"{sweep['label']} p95")
            ax.set_title(title)
            ax.set_ylabel(unit)
        axes[2].plot(xs, [lv["results"][m.OUTPUT_THROUGHPUT] for lv in levels], marker="o", label=sweep["label"])
    axes[2].set_title("Overall output throughput")
    axes[2].set_ylabel("output tokens / s")
    ticks = sorted({lv["concurrency"] for sweep in sweeps for lv in sweep["levels"]})
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("concurrent users")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    model = sweeps[0]["model"]
    fig.suptitle(f"{model}: {sweeps[0]['workload']['mean_input_tokens']} in / "
                 f"{sweeps[0]['workload']['mean_output_tokens']} out tokens (mean)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""One benchmark sweep: the workload at each concurrency level against one endpoint.

Importable: `run_sweep(endpoint, workload, out_dir=...)` returns the sweep as a dict (also written to
<out_dir>/sweep.json), so other scripts (e.g. the serving overhead comparison) reuse it.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from tools.bench import metrics as m
from tools.bench import report, runner
from tools.bench.workload import TokenCounter, Workload, prepare_requests
from tools.endpoint import Endpoint, resolve_model


def run_sweep(endpoint: Endpoint, workload: Workload, *, out_dir: Path, label: str, tokenizer: str | None = None,
              extra_body: dict | None = None, progress: bool = True, out: TextIO = sys.stdout) -> dict:
    model, root = resolve_model(endpoint)
    counter = TokenCounter.find(tokenizer, model, root)
    return asyncio.run(_sweep(endpoint, model, counter, workload, out_dir=out_dir, label=label,
                              extra_body=extra_body or {}, progress=progress, out=out))


async def _sweep(endpoint: Endpoint, model: str, counter: TokenCounter, workload: Workload, *, out_dir: Path,
                 label: str, extra_body: dict, progress: bool, out: TextIO) -> dict:
    client = endpoint.async_client(timeout=workload.timeout_s)
    words_per_token = 0.75
    if not counter.available:
        words_per_token = await runner.calibrate_words_per_token(client, model)
    print(f"[{label}] {endpoint.base_url} model={model} token counts from {counter.source}", file=out)
    sweep = {"label": label, "base_url": endpoint.base_url, "model": model, "token_count_source": counter.source,
             "workload": {k: v for k, v in vars(workload).items()}, "extra_body": extra_body, "levels": []}
    try:
        for concurrency in workload.concurrency:
            # The same seed per level: every endpoint in a comparison gets identical prompts.
            requests = prepare_requests(workload, workload.total_requests(concurrency), counter,
                                        words_per_token=words_per_token,
                                        rng=random.Random(workload.seed + concurrency))
            with tqdm(total=len(requests), desc=f"{label} c={concurrency}", unit="req", disable=not progress,
                      file=sys.stderr, leave=False) as bar:
                run = await runner.run_level(client, model, requests, concurrency, counter,
                                             timeout_s=workload.timeout_s, sampling=workload.sampling_params,
                                             extra_body=extra_body, on_done=lambda _: bar.update(1))
            results = m.summarize(run.records, run.duration_s)
            metadata = {
                "model": model,
                "mean_input_tokens": workload.mean_input_tokens,
                "stddev_input_tokens": workload.stddev_input_tokens,
                "mean_output_tokens": workload.mean_output_tokens,
                "stddev_output_tokens": workload.stddev_output_tokens,
                "num_concurrent_requests": concurrency,
                "additional_sampling_params": {**workload.sampling_params, **extra_body},
                "base_url": endpoint.base_url,
                "label": label,
                "token_count_source": counter.source,
                "duration_s": run.duration_s,
                "timed_out": run.timed_out,
                "num_requests_unfinished": run.unfinished,
            }
            summary_path, responses_path = report.write_run(out_dir / f"concurrency-{concurrency}", metadata,
                                                            results, run.records)
            report.print_level(label, concurrency, results, duration_s=run.duration_s, timed_out=run.timed_out,
                               out=out)
            sweep["levels"].append({"concurrency": concurrency, "results": results, "duration_s": run.duration_s,
                                    "timed_out": run.timed_out, "summary_file": str(summary_path),
                                    "individual_responses_file": str(responses_path)})
    finally:
        await client.close()
    return sweep

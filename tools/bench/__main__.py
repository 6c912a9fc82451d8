"""LLMPerf-style benchmark of an OpenAI-compatible endpoint: `python -m tools.bench` / `make bench`.

Sweeps concurrency (default 1, 2, 4, 8, 16 users, 8 requests each; mean 512 tokens in, 245 out),
writes LLMPerf's summary and individual-responses JSON per run under a dated folder, plots TTFT,
inter-token latency and throughput against concurrency, and prints $ per 1M output tokens.
With --compare-base-url the same load also runs against a second endpoint, ratios side by side.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import openai

from config.environments import ConfigError, load_config
from tools import cost
from tools.bench import metrics as m
from tools.bench import runner as r
from tools.bench.compare import compare_sweeps, print_comparison
from tools.bench.overhead import overhead_check, print_overhead
from tools.bench.report import plot_sweeps
from tools.bench.sweep import run_sweep
from tools.bench.workload import DEFAULT_CONCURRENCY, Workload
from tools.endpoint import EndpointError, add_endpoint_arguments, endpoint_from_args, report_failure


def _concurrency(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 1,2,4,8,16")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("give positive integers, e.g. 1,2,4,8,16")
    return values


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}); e.g. '{{\"temperature\": 0}}'")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"temperature\": 0}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    add_endpoint_arguments(p)
    p.add_argument("--label", default=None, help="name of this endpoint in outputs (default: host-port)")
    w = p.add_argument_group("workload (LLMPerf's flags)")
    w.add_argument("--mean-input-tokens", type=int, default=512, help="default: %(default)s")
    w.add_argument("--stddev-input-tokens", type=int, default=20, help="default: %(default)s")
    w.add_argument("--mean-output-tokens", type=int, default=245, help="max_tokens mean; default: %(default)s")
    w.add_argument("--stddev-output-tokens", type=int, default=20, help="default: %(default)s")
    w.add_argument("--requests-per-user", type=int, default=8, help="requests each concurrent user sends (default: %(default)s)")
    w.add_argument("--concurrency", type=_concurrency, default=DEFAULT_CONCURRENCY,
                   help="comma-separated concurrency levels (default: 1,2,4,8,16)")
    w.add_argument("--timeout", type=float, default=600.0, help="seconds per concurrency level (default: %(default)s)")
    w.add_argument("--seed", type=int, default=11111, help="prompt sampling seed (default: %(default)s)")
    w.add_argument("--additional-sampling-params", type=_json_object, default={},
                   help="JSON object merged into every request, e.g. '{\"temperature\": 0}'")
    w.add_argument("--ignore-eos", action="store_true",
                   help="ask vLLM to generate exactly max_tokens (vLLM's ignore_eos extension)")
    w.add_argument("--tokenizer", default=None,
                   help="model directory or tokenizer.json to count tokens with (default: the served model's "
                        "local directory or Hugging Face cache, else the endpoint's usage figures)")
    c = p.add_argument_group("cost")
    c.add_argument("--env", default=None, help="environment whose preset and TTFT p95 alarm are the defaults (default: dev)")
    c.add_argument("--preset", default=None, help="instance type serving the endpoint (price lookup)")
    c.add_argument("--price-per-hour", type=float, default=None, help="USD per instance-hour (overrides the table)")
    c.add_argument("--instances", type=int, default=1, help="instances behind the endpoint (default: %(default)s)")
    c.add_argument("--ttft-budget-ms", type=float, default=None, help="TTFT p95 budget (default: the env's alarm)")
    o = p.add_argument_group("outputs")
    o.add_argument("--results-dir", default="results/bench", help="a dated folder is made inside it per run (default: %(default)s)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    b = p.add_argument_group("compare mode: the same load against a second endpoint")
    add_endpoint_arguments(b, prefix="compare-")
    b.add_argument("--compare-label", default=None)
    b.add_argument("--overhead-rounds", type=int, default=3,
                   help="after the sweeps, alternating rounds of tools/bench/overhead.py against both (0: skip)")
    return p


def _label(base_url: str) -> str:
    return re.sub(r"[^\w.-]+", "-", base_url.split("://", 1)[-1].split("/", 1)[0]).strip("-")


def print_costs(sweep: dict, usd_per_hour: float, instances: int, budget_s: float, price_note: str, out) -> dict:
    levels = [(lv["concurrency"], lv["results"][m.OUTPUT_THROUGHPUT], lv["results"][r.TTFT]["quantiles"]["p95"])
              for lv in sweep["levels"]]
    table = cost.cost_table(levels, usd_per_hour, instances=instances, ttft_budget_s=budget_s)
    print(f"\n[{sweep['label']}] cost at ${usd_per_hour:g}/h x {instances} instance(s) ({price_note}); "
          f"TTFT p95 budget {budget_s * 1000:g} ms", file=out)
    print(f"  {'c':>3}{'output tok/s':>14}{'TTFT p95 (s)':>14}{'$ / 1M out':>12}  within budget", file=out)
    for row in table:
        usd = "-" if row.usd_per_million is None else f"{row.usd_per_million:.2f}"
        p95 = "-" if row.ttft_p95_s is None else f"{row.ttft_p95_s:.3f}"
        print(f"  {row.concurrency:>3}{row.output_tokens_per_s:>14.2f}{p95:>14}{usd:>12}  "
              f"{'yes' if row.within_budget else 'no'}", file=out)
    best = cost.cheapest_within_budget(table)
    if best:
        print(f"  cheapest within budget: concurrency {best.concurrency} at ${best.usd_per_million:.2f} "
              f"per 1M output tokens", file=out)
    else:
        print("  no concurrency level kept TTFT p95 within the budget", file=out)
    return {"usd_per_hour": usd_per_hour, "instances": instances, "ttft_budget_s": budget_s, "price_note": price_note,
            "levels": [vars(row) for row in table], "cheapest_within_budget": vars(best) if best else None}


def _overhead(sweeps: list[dict], endpoints: list, workload: Workload, rounds: int) -> dict:
    if sweeps[0]["model"] != sweeps[1]["model"]:
        return {"skipped": "the two endpoints serve different model names"}
    if endpoints[0].api_key != endpoints[1].api_key:
        return {"skipped": "the two endpoints use different API keys"}
    return overhead_check(endpoints[0].base_url, endpoints[1].base_url, sweeps[0]["model"],
                          api_key=endpoints[0].api_key, rounds=rounds, concurrency=max(workload.concurrency),
                          output_tokens=min(64, workload.mean_output_tokens))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        workload = Workload(args.mean_input_tokens, args.stddev_input_tokens, args.mean_output_tokens,
                            args.stddev_output_tokens, args.requests_per_user, args.concurrency, args.timeout,
                            args.seed, args.additional_sampling_params)
        env = load_config({"env": args.env} if args.env else {})
        preset = args.preset or env.accelerator_preset
        price = None if args.price_per_hour is not None else cost.price_of(preset)
        usd_per_hour = args.price_per_hour if price is None else price.usd_per_hour
        if usd_per_hour <= 0 or args.instances < 1:
            raise ValueError("--price-per-hour and --instances: must be positive")
        price_note = ("given price" if price is None else
                      f"{preset} on-demand, {price.region}, as of {price.as_of}")
        budget_s = (args.ttft_budget_ms if args.ttft_budget_ms is not None else env.ttft_p95_alarm_ms) / 1000
        endpoints = [endpoint_from_args(args)]
        labels = [args.label or _label(endpoints[0].base_url)]
        if args.compare_base_url:
            endpoints.append(endpoint_from_args(args, prefix="compare-"))
            labels.append(args.compare_label or _label(endpoints[1].base_url))
            if labels[0] == labels[1]:
                labels = [f"A-{labels[0]}", f"B-{labels[1]}"]
        if args.overhead_rounds < 0:
            raise ValueError("--overhead-rounds: must be 0 (skip) or more")
    except (ValueError, ConfigError, EndpointError) as exc:
        parser.error(str(exc))

    run_dir = Path(args.results_dir) / time.strftime("%Y%m%d-%H%M%S")
    extra_body = {"ignore_eos": True} if args.ignore_eos else {}
    sweeps = []
    for endpoint, label in zip(endpoints, labels):
        try:
            sweep = run_sweep(endpoint, workload, out_dir=run_dir / label, label=label, tokenizer=args.tokenizer,
                              extra_body=extra_body, progress=not args.no_progress)
        except (EndpointError, openai.APIError) as exc:
            return report_failure(exc, endpoint)
        except ValueError as exc:  # e.g. --tokenizer pointing at nothing
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"\ninterrupted; the runs finished so far are in {run_dir}/", file=sys.stderr)
            return 130
        sweep["cost"] = print_costs(sweep, usd_per_hour, args.instances, budget_s, price_note, sys.stdout)
        sweeps.append(sweep)

    output = {"sweeps": sweeps}
    if len(sweeps) == 2:
        output["comparison"] = compare_sweeps(*sweeps)
        print_comparison(output["comparison"], labels[0], labels[1], sys.stdout)
        if args.overhead_rounds > 0:
            output["overhead_check"] = _overhead(sweeps, endpoints, workload, args.overhead_rounds)
            print_overhead(output["overhead_check"], labels[0], labels[1], sys.stdout)
    plot = plot_sweeps(sweeps, run_dir / "sweep.png")
    (run_dir / "sweep.json").write_text(json.dumps(output, indent=2))
    print(f"\nresults: {run_dir}/ (sweep.json, plot {plot})")
    completed = sum(lv["results"][m.NUM_COMPLETED] for s in sweeps for lv in s["levels"])
    if not completed:
        print("error: no request completed; see error_msg in the individual_responses files", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

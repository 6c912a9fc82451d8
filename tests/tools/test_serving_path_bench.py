"""The serving-path comparison's method (tools/bench/serving_path.py), offline: its servers and vLLM's
benchmark client are replaced by recorders, so what is checked is the method issue 12 prescribes: one
server alive at a time, alternating, a warm-up discarded, fresh prompts for every run (a repeated
seed hits the prefix cache and flatters later runs), the same prompts for both servers, and the
first-run figures kept apart from the rest."""

from __future__ import annotations

import argparse

import pytest

from tools.bench import serving_path

STARTS, RUNS = 2, 3


@pytest.fixture
def recorded(monkeypatch):
    events: list[tuple] = []
    alive: list[str] = []

    class Proc:
        def __init__(self, kind):
            self.kind = kind

    def server(kind, model, known, env, log):
        assert not alive, f"{kind} started while {alive} is alive"
        alive.append(kind)
        events.append(("start", kind))
        return Proc(kind)

    def stop(proc):
        alive.remove(proc.kind)

    def bench_once(model, served, opts, prompts, log=None, seed=0):
        kind = alive[0]
        events.append(("bench", kind, prompts, seed))
        # Ray 10 % slower, and 30 ms more TTFT on each start's first measured run only.
        first = sum(1 for e in events if e[0] == "bench" and e[1] == kind) % (RUNS + 1) == 2
        return {"output_tokens_per_s": 1000.0 if kind == "vllm" else 900.0,
                "ttft_p50_ms": 50.0 + (30.0 if first and kind == "ray" else 0.0), "failed": 0}

    monkeypatch.setattr(serving_path, "_server", server)
    monkeypatch.setattr(serving_path, "_stop", stop)
    monkeypatch.setattr(serving_path, "_wait_ready", lambda url, proc: None)
    monkeypatch.setattr(serving_path, "bench_once", bench_once)
    monkeypatch.setattr("serving.local.serve.local_model", lambda name: (argparse.Namespace(served_name=name), "/m"))
    opts = argparse.Namespace(model="tiny-llama3", starts=STARTS, runs=RUNS, input_len=512, output_len=128,
                              concurrency=16, prompts=256)
    return serving_path.run(opts), events


def test_one_server_at_a_time_alternating_with_a_discarded_warm_up(recorded):
    result, events = recorded
    starts = [e[1] for e in events if e[0] == "start"]
    assert starts == ["vllm", "ray"] * STARTS
    benches = [e for e in events if e[0] == "bench"]
    assert [e[2] for e in benches] == ([16] + [256] * RUNS) * 2 * STARTS  # warm-up at the concurrency, then runs
    assert {k: len(v) for k, v in result["runs"].items()} == {"vllm": STARTS * RUNS, "ray": STARTS * RUNS}


def test_every_run_has_fresh_prompts_and_both_servers_the_same(recorded):
    _, events = recorded
    seeds = {kind: [e[3] for e in events if e[0] == "bench" and e[1] == kind] for kind in ("vllm", "ray")}
    assert seeds["vllm"] == seeds["ray"]
    assert len(set(seeds["vllm"])) == len(seeds["vllm"]) == STARTS * (RUNS + 1)


def test_first_runs_are_summarised_apart(recorded):
    result, _ = recorded
    assert result["throughput_ratio"] == 0.9
    assert result["ttft_p50_overhead_ms"] == 0.0  # the median of all runs hides the first-run overhead
    assert result["first_run"]["ttft_p50_overhead_ms"] == 30.0
    assert result["first_run"]["throughput_ratio"] == 0.9

"""The alternating-round overhead check (tools/bench/overhead.py), offline: its rounds run through the
benchmark's load generator against fake streaming endpoints, and its figures add up."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.bench import overhead

TOKENS = 6  # the warm-up asks 8


class FakeStreamingServer:
    """/v1/chat/completions streaming TOKENS content chunks and a usage chunk; records the bodies."""

    def __init__(self, *, fail: bool = False):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                if fail:
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "boom"}}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
                n = body["max_tokens"]
                chunks = [{**base, "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
                          for _ in range(n)]
                chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n,
                                                                "total_tokens": 5 + n}})
                for chunk in chunks:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_measure_sends_the_check_s_requests_through_the_benchmark_runner():
    with FakeStreamingServer() as server:
        result = overhead.measure(server.url + "/v1", "m", concurrency=2, output_tokens=TOKENS, requests=5)
    assert result.requests == 5 and result.failed == 0 and result.output_tokens == 5 * TOKENS
    assert result.output_tokens_per_s == pytest.approx(5 * TOKENS / result.wall_s, rel=0.05)
    assert 0 < result.ttft_p50_ms <= result.ttft_p90_ms
    body = server.bodies[0]
    assert body["stream"] is True and body["ignore_eos"] is True and body["temperature"] == 0
    assert body["max_tokens"] == TOKENS and body["stream_options"] == {"include_usage": True}
    # request i asks PROMPTS[i % 4], the last one first (as the former scripts/bench_overhead.py did)
    prompts = [b["messages"][0]["content"] for b in server.bodies]
    assert sorted(prompts) == sorted(overhead.PROMPTS[i % 4] for i in range(5))


def test_compare_alternates_rounds_and_reports_median_figures():
    with FakeStreamingServer() as a, FakeStreamingServer() as b:
        figures = overhead.compare(a.url, b.url + "/v1", "m", rounds=2, concurrency=2, output_tokens=TOKENS)
    # each side: a warm-up of `concurrency` short requests, then per round 4 requests per stream
    assert len(a.bodies) == len(b.bodies) == 2 + 2 * 2 * 4
    assert [x["max_tokens"] for x in a.bodies[:2]] == [8, 8] and {x["max_tokens"] for x in a.bodies[2:]} == {TOKENS}
    assert len(figures["ray"]) == len(figures["vllm"]) == 2 and figures["failed"] == 0
    assert figures["throughput_ratio"] == pytest.approx(figures["ray_tokens_per_s"] / figures["vllm_tokens_per_s"],
                                                        abs=0.001)
    assert figures["ttft_p50_overhead_ms"] == pytest.approx(figures["ray_ttft_p50_ms"] - figures["vllm_ttft_p50_ms"],
                                                            abs=0.1)


def test_failed_requests_are_counted():
    with FakeStreamingServer(fail=True) as bad:
        result = overhead.measure(bad.url, "m", concurrency=2, output_tokens=TOKENS, requests=3)
    assert result.failed == 3 and result.output_tokens == 0


def test_compare_mode_reports_a_failed_check_instead_of_losing_the_sweeps():
    with FakeStreamingServer() as good, FakeStreamingServer(fail=True) as bad:
        figures = overhead.overhead_check(good.url, bad.url, "m", api_key=None, rounds=1, concurrency=1,
                                          output_tokens=TOKENS)
    assert figures["skipped"].startswith("the overhead check failed: ")


def test_the_standalone_entry_parses_its_flags_without_the_serving_venv():
    result = subprocess.run([sys.executable, "-m", "tools.bench.overhead", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--rounds", "--concurrency", "--output-tokens", "--proxy", "--json"):
        assert flag in result.stdout


def test_vllm_server_command_passes_dict_options_as_json():
    """vLLM parses dict-valued flags with json.loads: str(dict) made `vllm serve` exit with 2 at startup."""
    cmd = overhead.vllm_server_command("/models/tiny", 18002, "tiny-llama3")
    value = cmd[cmd.index("--override-generation-config") + 1]
    assert isinstance(json.loads(value), dict)

"""Bad flags and an unreachable endpoint give one clear line, never a traceback."""

import subprocess
import sys

import pytest

from tests.support.ports import free_port


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["tools.client", "tools.bench"])
def test_unreachable_endpoint(module):
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = _run(module, "--base-url", url, "--no-progress" if module == "tools.bench" else "--max-tokens=4")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: cannot reach {url}: is the server running? Start local mode with `make serve-local`, "
        f"or port-forward the deployed endpoint (`make first-hour` prints the command)")


@pytest.mark.parametrize("args, message", [
    (["--concurrency", "1,x"], "argument --concurrency: '1,x' is not a comma-separated list of integers"),
    (["--concurrency", "0"], "argument --concurrency: give positive integers"),
    (["--additional-sampling-params", "{bad"], "argument --additional-sampling-params: not valid JSON"),
    (["--additional-sampling-params", "[1]"], "argument --additional-sampling-params: must be a JSON object"),
    (["--mean-input-tokens", "0"], "--mean-input-tokens: must be a positive integer"),
    (["--preset", "p5.48xlarge"], "--preset: no price for 'p5.48xlarge'"),
    (["--env", "staging"], "env: unknown environment 'staging'"),
    (["--base-url", "localhost:8000"], "--base-url: 'localhost:8000' is not an http(s) URL"),
])
def test_bench_rejects_bad_flags(args, message):
    result = _run("tools.bench", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_client_rejects_bad_max_tokens():
    result = _run("tools.client", "--max-tokens", "0")
    assert result.returncode == 2 and "--max-tokens: must be a positive integer" in result.stderr

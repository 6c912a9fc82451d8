"""A replica that cannot start says why: one line with its own exception and the setting behind it.

The failure the issue found: a checkpoint whose tokenizer lacks <|python_tag|>, served with the
llama3_json parser (`--model tiny-llama3 --model-dir <SmolLM2>` pairs them). Local mode must print
the replica's exception and where its full log is, and exit 1 after one try instead of Ray Serve's
silent retries; the replica's own log carries the ERROR line the cluster's first-hour command greps.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import time

import pytest

from config.names import STARTUP_ERROR_MARKER
from serving.local.serve import stop_instance_leftovers
from serving.settings import ServingSettings, local_cpu_args
from serving.startup import describe
from tests.serving.conftest import ROOT, SERVING_PYTHON
from tests.support.ports import free_port

PARSER_ERROR = ("--tool-call-parser llama3_json cannot be used with the tokenizer of '/m': Llama3JsonToolParser "
                "could not locate the bot token '<|python_tag|>' in the tokenizer.")


def test_the_line_names_the_setting_the_error_points_at():
    settings = ServingSettings.from_args(local_cpu_args("/m", "tiny-llama3"))
    line = describe(settings, TypeError(PARSER_ERROR))
    assert line == f"{STARTUP_ERROR_MARKER}: TypeError: {PARSER_ERROR} (offending setting: tool_call_parser='llama3_json')"


def test_without_a_named_setting_the_line_shows_the_engine_shape():
    settings = ServingSettings.from_args(local_cpu_args("/m", "tiny-llama3"))
    line = describe(settings, RuntimeError("Engine core initialization failed"))
    assert line.startswith(f"{STARTUP_ERROR_MARKER}: RuntimeError: Engine core initialization failed (engine settings: ")
    assert "model='/m'" in line and "max_model_len=2048" in line and "tool_call_parser='llama3_json'" in line


@pytest.mark.serving
def test_local_mode_prints_the_replicas_exception_and_exits_1():
    smollm2 = subprocess.run([str(SERVING_PYTHON), "-m", "serving.local.smollm2"], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, check=True).stdout.strip().splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    started = time.monotonic()
    proc = subprocess.Popen([str(SERVING_PYTHON), "-m", "serving.local.serve", "--port", str(free_port()), "--no-auth",
                             "--model", "tiny-llama3", "--model-dir", smollm2],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        stop_instance_leftovers(proc.pid)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, err[-3000:]
    [line] = [ln for ln in err.splitlines() if ln.startswith("local mode: ")]
    assert re.fullmatch(r"local mode: the vllm replica failed to start: \w+: --tool-call-parser llama3_json cannot be "
                        r"used with the tokenizer of .*could not locate the bot token '<\|python_tag\|>'.*", line), line
    [log_line] = [ln for ln in err.splitlines() if ln.strip().startswith("full log: ")]
    logs = glob.glob(log_line.split("full log: ", 1)[1].strip())
    # One try: one replica log, and in it the replica's own ERROR line with the offending setting.
    assert len(logs) == 1, logs
    text = open(logs[0]).read()
    assert f"ERROR" in text and f"{STARTUP_ERROR_MARKER}: " in text
    assert "(offending setting: tool_call_parser='llama3_json')" in text
    assert "Traceback" not in line and "Deploying application" not in line
    print(json.dumps({"failed_start_s": round(elapsed, 1)}))

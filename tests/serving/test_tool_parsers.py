"""config/models.py's parser table against real vLLM: both releases, real tokenizers.

Each known local model's parser must start on its own tokenizer in vLLM 0.32 (local mode) and 0.16
(the Neuron DLC's), answer a plain reply as content (Open WebUI sends `tools` with tool_choice
"auto" by default, and these models answer in text) and read a call in its own format. The table's
token requirements must be what vLLM really checks: SmolLM2's tokenizer has no <|python_tag|>, the
tiny model's has, so llama3_json refuses one and starts on the other in 0.32.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from config.models import KNOWN_MODELS, TOOL_CALL_PARSERS
from tests.serving.conftest import ROOT, SERVING_PYTHON, VLLM016_PYTHON

pytestmark = pytest.mark.serving

LOCAL_ROWS = [m for m in KNOWN_MODELS if "cpu" in m.devices]


@pytest.fixture(scope="module")
def model_dirs() -> dict[str, str]:
    out = subprocess.run([str(SERVING_PYTHON), "-c", "import json; from serving.local.serve import LOCAL_MODELS, "
                          "local_model; print(json.dumps({n: local_model(n)[1] for n in LOCAL_MODELS}))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe(python, model_dirs) -> dict:
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make setup-serving setup-vllm016`")
    out = subprocess.run([str(python), "-m", "tests.serving.tool_parser_probe",
                          *(f"{n}={d}" for n, d in model_dirs.items())],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["vllm032", "vllm016"])
def probe(request, model_dirs):
    return _probe(SERVING_PYTHON if request.param == "vllm032" else VLLM016_PYTHON, model_dirs)


def test_every_local_models_parser_starts_and_answers_text_as_content(probe):
    for row in LOCAL_ROWS:
        result = probe["results"][f"{row.served_name}/{row.tool_call_parser}"]
        assert "error" not in result, (probe["vllm"], row.served_name, result)
        assert result["plain_called"] is False and result["plain_content"], result
        assert result["call_names"] == ["get_weather"], result


def test_the_token_requirements_are_what_vllm_032_checks(model_dirs):
    from tokenizers import Tokenizer

    probe = _probe(SERVING_PYTHON, model_dirs)
    assert probe["vllm"].startswith("0.32")
    for served_name, model_dir in model_dirs.items():
        vocab = Tokenizer.from_file(f"{model_dir}/tokenizer.json").get_vocab(with_added_tokens=True)
        for parser, needs in TOOL_CALL_PARSERS.items():
            starts = "error" not in probe["results"][f"{served_name}/{parser}"]
            assert starts == all(token in vocab for token in needs), (served_name, parser, needs)
    # Both outcomes occur: the check above can tell a refusing parser from a starting one.
    outcomes = {"error" in r for r in probe["results"].values()}
    assert outcomes == {True, False}

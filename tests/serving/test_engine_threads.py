"""The replica's engine gets the machine's cores, as vLLM's own server does (issue 12, the serving path).

Ray sets OMP_NUM_THREADS to a worker's num_cpus (1 for local mode's fractional replica), and the
EngineCore process inherited it: torch ran the model on one of this machine's cores, and local mode
reached 0.56 of vLLM's own server in output tokens/s (tools/bench/serving_path.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.local_server import engine_core_pids

pytestmark = pytest.mark.serving


def _cpus_allowed(pid: int) -> int:
    """Cores in the process's affinity list (/proc/<pid>/status Cpus_allowed_list, e.g. "0-1,4")."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            count = 0
            for part in line.split(":", 1)[1].strip().split(","):
                low, _, high = part.partition("-")
                count += int(high or low) - int(low) + 1
            return count
    raise AssertionError(f"no Cpus_allowed_list for {pid}")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if b"=" in item)


def test_the_engine_threads_use_every_core_the_replica_may_run_on(local_endpoint):
    engines = engine_core_pids(local_endpoint.process_tree())
    assert engines, "no EngineCore process under the local server"
    for pid in engines:
        threads = _environ(pid).get("OMP_NUM_THREADS")
        # Absent: torch takes every core of the affinity list; set: vLLM's own CPU binding chose it.
        assert threads is None or int(threads) == _cpus_allowed(pid), (
            f"EngineCore {pid} runs with OMP_NUM_THREADS={threads} on {_cpus_allowed(pid)} cores")

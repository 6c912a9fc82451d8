"""One cluster in a box for the whole module (tests/cluster_box/box.py); torn down also on failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster_box.box import REPO, SERVING_VENV, Box, cpu_swap, reap_stale_boxes

HEAD_READY_TIMEOUT_S = 90
APP_RUNNING_TIMEOUT_S = 240
MAX_CONTAINER_RESTARTS = 2


def _require_system() -> None:
    if os.geteuid() != 0:
        pytest.fail("the cluster box needs root (network namespaces, mounts, iptables)")
    missing = [t for t in ("ip", "iptables", "unshare", "setpriv", "wget") if not shutil.which(t)]
    if missing:
        pytest.fail(f"the cluster box needs {missing}: run `make setup-box` (tests/cluster_box/setup_system.sh)")
    if not (SERVING_VENV / "bin" / "ray").exists():
        pytest.fail("the cluster box needs .venv-serving: run `make setup-serving`")


def wait_for(what: str, check, timeout: float, box: Box, pods=None, interval: float = 1.0):
    pods = box.ray_pods if pods is None else pods
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for name in pods:
            pod = box.pods[name]
            if pod.proc is not None and pod.proc.poll() is not None and not pod.terminating:
                # restartPolicy Always (a Ray node can time out joining on an overloaded machine);
                # a pod that keeps failing is an error, like CrashLoopBackOff.
                if pod.restarts >= MAX_CONTAINER_RESTARTS:
                    raise AssertionError(f"{what}: pod {name} exited {pod.proc.returncode} "
                                         f"({pod.restarts} restarts):\n{pod.log_tail()}")
                print(f"cluster box: {name} exited {pod.proc.returncode}; restarting its container:\n{pod.log_tail(800)}")
                box.restart_container(name)
        time.sleep(interval)
    tails = "\n".join(f"--- {n} ---\n{box.pods[n].log_tail()}" for n in pods)
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{tails}")


def serve_config(box: Box) -> dict:
    """serveConfigV2 of dist/ as KubeRay PUTs it, with the one device/model swap in the app args."""
    config = yaml.safe_load(box.rayservice["spec"]["serveConfigV2"])
    for app in config["applications"]:
        app["args"] = cpu_swap(app["args"])
    return config


def app_running(box: Box) -> bool:
    box.operator_update_head_serve_label()
    apps = box.operator_app_statuses()
    return bool(apps) and all(a.get("status") == "RUNNING" for a in apps.values())


def start_box(tmp_path_factory, workers: int = 1, patch_config=None, patch_box=None,
              app_timeout: float = APP_RUNNING_TIMEOUT_S):
    """A running box (generator: yields it, tears it down): dist/ as `make synth` writes it, `workers`
    worker pods, the serve config KubeRay PUTs (`patch_config(config)` may change it first: a test's
    own replica count) and the app RUNNING. `patch_box(box)` runs after plan(), before any pod starts."""
    _require_system()
    reap_stale_boxes()
    from k8s_charts import write_dist

    started = time.monotonic()
    dist = tmp_path_factory.mktemp("box-dist")
    assert write_dist.main(["--out", str(dist)]) == 0  # what `make synth` writes to dist/
    model = subprocess.run([str(SERVING_VENV / "bin" / "python"), "-m", "serving.local.tiny_model"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    b = Box(dist, Path(model), workers=workers)
    timings = {}
    try:
        b.plan()
        if patch_box:
            patch_box(b)
        b.network_up()
        print(f"cluster box: model store warmed: {b.model_store_up()}")
        b.start_pod("head")
        wait_for("head readiness probe", lambda: b.probe("head"), HEAD_READY_TIMEOUT_S, b, pods=("head",))
        timings["head_ready_s"] = time.monotonic() - started
        for name in b.ray_pods[1:]:
            b.start_pod(name)
        # The operator deploys once the head pod is Ready (reconcileServe) and retries on every
        # reconcile until the dashboard accepts it (UpdateDeployments is idempotent); then it polls.
        config = serve_config(b)
        if patch_config:
            patch_config(config)
        last = []
        wait_for("PUT /api/serve/applications/ accepted",
                 lambda: last.append(b.operator_deploy(config)) or last[-1][0] == 200, 90, b, interval=2)
        wait_for("serve application RUNNING", lambda: app_running(b), app_timeout, b)
        timings["app_running_s"] = time.monotonic() - started
        b.timings = timings
        yield b
    finally:
        b.close()
        print(f"cluster box: {timings} total {time.monotonic() - started:.1f}s")


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    yield from start_box(tmp_path_factory)

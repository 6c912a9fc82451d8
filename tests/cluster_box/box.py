"""A cluster in a box: dist/'s RayService run the way KubeRay 1.7 and the kubelet run it, on this machine.

Each pod is a Linux network namespace (veth to a bridge that lives in a box-only "node" namespace:
10.123.0.0/24 exists only inside the box, nothing is routed out) with its own private mount namespace
and PID namespace (so `ray stop` in one pod sees only that pod's processes, as in a container):

* head and one worker (or more: `Box(workers=n)`, pods worker, worker2, ...): the `ray start` command
  KubeRay builds from rayStartParams, through `/bin/bash -c`, as uid/gid of the container's
  securityContext with its capabilities (and the pod's fsGroup as a supplementary group), the container's env plus what KubeRay injects (token auth
  included), and the volumes as the kubelet makes them: emptyDir 0777 (fsGroup-owned), emptyDir medium
  Memory as a tmpfs of its sizeLimit, a Secret as the kubelet's atomic-writer directory (..data
  symlinks, defaultMode, fsGroup), readOnly mounts read-only, hostPath DirectoryOrCreate root:root 0755
  (a per-"node" directory that survives pod restarts); init containers first, with their own uid and
  capabilities (kuberay.py, pod_exec.py);
* Secrets as External Secrets would sync them: dist/'s ExternalSecrets over a fake Secrets Manager
  holding generated values shaped as the inference stack generates them (the named API keys as
  {"current": ...}), so secretKeyRef env vars and Secret volumes carry exactly what dist/ wires;
* "operator" (kuberay-operator, calling the dashboard with the Ray token as KubeRay does), "webui"
  (Open WebUI's namespace and labels), "smoke" (the smoke Job's pod labels, in `vllm`), "intruder"
  (an unlabelled pod in `vllm`) and "other" (default): where the tests' clients run, through setns();
* every pod's ingress and egress is dist/'s NetworkPolicies as iptables rules (netpol.py);
* a pod deletion as the kubelet runs it (`terminate_pod`): the container's preStop exec hook in its
  namespaces as its user, bounded by terminationGracePeriodSeconds, then SIGTERM, then SIGKILL.

* the model store: moto's S3 server in the node namespace (NODE_IP:S3_PORT), holding the tiny local
  model under the configured model's weights prefix (put there by `serving.model_store prepare`, as an
  operator warms the store); the worker's model-fetch init container fetches it into its model cache
  and the engine loads it from there. EKS Pod Identity is modelled by the credentials and endpoint it
  gives the pods of the ray-worker service account only (POD_IDENTITY_ENV); the role's policy itself
  is checked on the synthesized template (tests/stacks/test_model_store_stack.py).

Only the device is swapped (`cpu_swap`): the CPU, and the tiny model standing in for the configured one.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from config.names import RAY_WORKER_SERVICE_ACCOUNT
from config.secrets import KEY_CURRENT, api_key_secret_name
from tests.cluster_box import kuberay
from tests.cluster_box.netpol import BoxPod, iptables_rules

REPO = Path(__file__).resolve().parents[2]
SERVING_VENV = REPO / ".venv-serving"
POD_EXEC = Path(__file__).with_name("pod_exec.py")
SUBNET = "10.123.0"
NODE_IP = f"{SUBNET}.1"
# The serving image's HOME and WORKDIR (serving/Dockerfile); here a per-pod directory.
IMAGE_HOME = "/home/ray"
CLONE_NEWNET = 0x40000000
S3_PORT = 9000
S3_URL = f"http://{NODE_IP}:{S3_PORT}"
# What EKS Pod Identity gives a pod of an associated service account, as the box models it: credentials
# (the agent's, here static ones moto accepts) and, box only, the S3 endpoint.
POD_IDENTITY_ENV = {"AWS_ENDPOINT_URL_S3": S3_URL, "AWS_ACCESS_KEY_ID": "box", "AWS_SECRET_ACCESS_KEY": "box"}
BOX_ARTIFACT = "box-compiled.neff"
CDK_VENV = REPO / ".venv"  # moto's server and the operator's prepare command run from the CDK app's venv
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class BoxError(RuntimeError):
    pass


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise BoxError(f"{' '.join(cmd)}: rc={proc.returncode} {proc.stderr.strip()}")
    return proc


def in_netns(netns: str, fn: Callable[[], Any]) -> Any:
    """Run fn in a thread that joined `netns`: its sockets belong to that namespace (network ns is per thread)."""
    out: dict[str, Any] = {}

    def run() -> None:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns}")
        finally:
            os.close(fd)
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def http(netns: str, method: str, url: str, body: bytes | None = None, timeout: float = 2.0,
         headers: dict | None = None) -> tuple[int, bytes]:
    """(status, body) of one request from `netns`; status 0 when no connection was made (e.g. dropped)."""
    def call():
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""
    return in_netns(netns, call)


def reap_stale_boxes() -> list[str]:
    """Remove what a box of a dead test process (SIGKILLed before its teardown) left: its network
    namespaces with their processes, and its state directory. Boxes of live processes are untouched."""
    import re

    reaped = []
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        m = re.match(r"(cb(\d+)-\w+)", line)
        if m and not Path(f"/proc/{m.group(2)}").exists():
            for pid in sh("ip", "netns", "pids", m.group(1), check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "del", m.group(1), check=False)
            reaped.append(m.group(1))
    for state in Path("/var/tmp").glob("cluster-box-cb*-*"):
        m = re.match(r"cluster-box-cb(\d+)-", state.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            shutil.rmtree(state, ignore_errors=True)
            reaped.append(str(state))
    return reaped


def load_manifests(dist: Path) -> list[dict]:
    return [d for p in sorted(dist.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def fake_secrets_manager(manifests: list[dict]) -> dict[str, str]:
    """A generated value per Secrets Manager secret dist/'s ExternalSecrets name, shaped as
    stacks/inference_stack.py generates it: the named API keys (api_key_secret_name) as {"current": ...}."""
    api_key_infix = api_key_secret_name("", "")  # "/vllm-api-keys/": the named keys' common part
    store = {}
    for es in (m for m in manifests if m["kind"] == "ExternalSecret"):
        for d in es["spec"]["data"]:
            name = d["remoteRef"]["key"]
            value = "box" + secrets.token_hex(20)
            store.setdefault(name, json.dumps({KEY_CURRENT: value}) if api_key_infix in name else value)
    return store


def eso_sync(manifests: list[dict], store: dict[str, str]) -> dict[tuple[str, str], dict[str, str]]:
    """The Kubernetes Secrets ESO writes: {(namespace, name): {data key: value}}. remoteRef.property picks
    one top-level field of a JSON value (ESO's gjson path); without it the whole value is the data."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for es in (m for m in manifests if m["kind"] == "ExternalSecret"):
        data = {}
        for d in es["spec"]["data"]:
            ref = d["remoteRef"]
            if set(ref) - {"key", "property"}:
                raise BoxError(f"ExternalSecret {es['metadata']['name']}: remoteRef {sorted(ref)} is not modelled")
            value = store[ref["key"]]
            data[d["secretKey"]] = json.loads(value)[ref["property"]] if "property" in ref else value
        out[(es["metadata"]["namespace"], es["spec"]["target"]["name"])] = data
    return out


def image_config_files(dockerfile: Path = REPO / "serving" / "Dockerfile") -> list[str]:
    """The config/ modules serving/Dockerfile COPYs into /app/config (the image's only files beside serving/)."""
    files = []
    for line in dockerfile.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and parts[-1].rstrip("/") == "/app/config":
            files += [p for p in parts[1:-1] if not p.startswith("--")]
    return files


def smoke_job_pod_labels() -> dict[str, str]:
    """The labels the smoke Lambda gives its Job's pods (the Job runs in the serving namespace)."""
    from platform_constructs.smoke_test.runtime.runner import job_manifest
    job = job_manifest("box", namespace="vllm", configmap="c", image="i", base_url="u", model="m",
                       api_key_secret="s", api_key_secret_key="k", deadline_seconds=1)
    return dict(job["spec"]["template"]["metadata"]["labels"])


def cpu_swap(app_args: dict) -> dict:
    """The one swap: the device. Neuron-only shape (TP, NeuronCores, the engine's block layout,
    compiled artifacts) becomes the serving contract's CPU row; everything else stays as dist/ says
    (`model` included: the worker's local copy of the store, which holds the tiny model), and the
    deployment's ray_actor_options (neuron_cores, num_cpus) are not touched at all."""
    from serving.settings import local_cpu_args

    cpu = local_cpu_args(model=app_args["model"], served_model_name=app_args["served_model_name"])
    device_keys = ("device", "tensor_parallel_size", "max_model_len", "block_size",
                   "compiled_artifacts_dir", "neuron_cores")
    return {**app_args, **{k: cpu[k] for k in device_keys}}


# Env the CPU engine needs in the box instead of the Neuron runtime's (small KV cache, no hub access).
# RAY_worker_niceness=0: Ray starts workers (the replica, the engine) at nice 15; on a shared 2-core
# test machine that starves them behind every other process (a pod has its own CPUs; moot there).
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RAY_worker_niceness": "0"}


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict
    ip: str
    netns: str
    node_type: str | None = None          # "head" / "worker" for Ray pods
    template: dict | None = None          # the pod template from dist/
    start_params: dict = field(default_factory=dict)
    start_cmd: str = ""
    probes: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log: Path | None = None
    starts: int = 0
    restarts: int = 0  # container restarts by the "kubelet" (restartPolicy Always)
    terminating: bool = False  # being deleted (terminate_pod): no longer a Service endpoint, never restarted

    @property
    def container(self) -> dict:
        return self.template["spec"]["containers"][0]

    def pids(self) -> list[int]:
        out = sh("ip", "netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except (OSError, AttributeError):
            return ""


def worker_name(i: int) -> str:
    """The box's worker pods: worker, worker2, worker3, ..."""
    return "worker" if i == 0 else f"worker{i + 1}"


class Box:
    def __init__(self, dist: Path, model_dir: Path, workers: int = 1) -> None:
        self.manifests = load_manifests(dist)
        self.rayservice = next(m for m in self.manifests if m["kind"] == "RayService")
        self.policies = [m for m in self.manifests if m["kind"] == "NetworkPolicy"]
        self.secrets_manager = fake_secrets_manager(self.manifests)
        self.k8s_secrets = eso_sync(self.manifests, self.secrets_manager)
        self.id = f"cb{os.getpid()}"
        # Outside /tmp: each pod gets its own /tmp (the container's), which would hide this directory.
        self.state = Path(tempfile.mkdtemp(prefix=f"cluster-box-{self.id}-", dir="/var/tmp"))
        self.state.chmod(0o755)
        self.model_dir = self._copy_model(model_dir)
        self.app_dir = self._copy_app()
        self.node_dir = self.state / "node"   # the node's filesystem: hostPath volumes live here
        self.node_dir.mkdir()
        self.created_mountpoints: list[Path] = []
        self.pods: dict[str, Pod] = {}
        self.cluster = f"{self.rayservice['metadata']['name']}-box01"  # KubeRay's RayCluster name
        self.serve_labels: dict[str, str] = {}
        self._netns: list[str] = []
        self.s3_proc: subprocess.Popen | None = None
        self.workers = workers

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        try:
            return self.k8s_secrets[(namespace, name)][key]
        except KeyError:
            raise BoxError(f"Secret {namespace}/{name} has no key {key!r}: no ExternalSecret of dist/ syncs it "
                           f"(the kubelet: CreateContainerConfigError)") from None

    @property
    def api_key(self) -> str:
        """The key Open WebUI sends (its Secret, as synced), the client key of the tests."""
        from config.secrets import API_KEY_SECRET, API_KEY_SECRET_KEY
        namespace, _ = self._webui_labels()
        return self.secret_value(namespace, API_KEY_SECRET, API_KEY_SECRET_KEY)

    def ray_token(self) -> str | None:
        """What KubeRay's dashboard client sends (GetRayDashboardClientFunc): the auth Secret's auth_token."""
        secret = kuberay.auth_secret_name(self.rayservice["spec"]["rayClusterConfig"], self.cluster)
        if secret is None:
            return None
        return self.secret_value(self.rayservice["metadata"]["namespace"], secret, kuberay.RAY_AUTH_TOKEN_SECRET_KEY)

    def operator_headers(self) -> dict[str, str]:
        token = self.ray_token()
        return {kuberay.RAY_AUTH_HEADER: f"Bearer {token}"} if token else {}

    # --- setup -----------------------------------------------------------------------------------

    def _copy_model(self, model_dir: Path) -> Path:
        # The weights the worker would download as its own user: readable by it (the local build
        # writes model.safetensors 0600 root).
        dst = self.state / "model"
        shutil.copytree(model_dir, dst)
        for path in [dst, *dst.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return dst

    def _copy_app(self) -> Path:
        """The image's /app: serving/ and the config/ modules serving/Dockerfile copies, so a stray import
        of the rest of the repo fails as it would in the image."""
        dst = self.state / "app"
        shutil.copytree(REPO / "serving", dst / "serving", ignore=shutil.ignore_patterns("__pycache__"))
        (dst / "config").mkdir()
        for rel in image_config_files():
            shutil.copy2(REPO / rel, dst / "config" / Path(rel).name)
        return dst

    def _webui_labels(self) -> tuple[str, dict]:
        dep = next(m for m in self.manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "open-webui")
        return dep["metadata"]["namespace"], dep["spec"]["template"]["metadata"]["labels"]

    def plan(self) -> None:
        cluster = self.rayservice["spec"]["rayClusterConfig"]
        ns = self.rayservice["metadata"]["namespace"]
        autoscaling = bool(cluster.get("enableInTreeAutoscaling"))
        head_ip = f"{SUBNET}.10"
        head_t, [worker_g] = cluster["headGroupSpec"], cluster["workerGroupSpecs"]
        auth_secret = kuberay.auth_secret_name(cluster, self.cluster)
        # Workers at .11, .12, ... (below the client pods' .20+).
        assert 1 <= self.workers <= 9, self.workers
        workers = [(worker_name(i), "worker", f"{SUBNET}.{11 + i}", worker_g["groupName"], worker_g["rayStartParams"])
                   for i in range(self.workers)]
        for name, node_type, ip, group, params_in in (
            ("head", "head", head_ip, "headgroup", head_t["rayStartParams"]), *workers,
        ):
            template = json.loads(json.dumps(head_t["template"] if node_type == "head" else worker_g["template"]))
            if node_type == "worker":
                spec = template["spec"]
                spec["initContainers"] = [*spec.get("initContainers", []),
                                          kuberay.wait_gcs_ready(spec["containers"][0], head_ip)]
            if auth_secret:  # configureTokenAuth: the Ray container and wait-gcs-ready
                kuberay.add_token_auth_env(template["spec"]["containers"][0], auth_secret)
                for init in template["spec"].get("initContainers", []):
                    if init["name"] == "wait-gcs-ready":
                        kuberay.add_token_auth_env(init, auth_secret)
            labels = kuberay.pod_labels(node_type, self.cluster, group, template["metadata"].get("labels", {}))
            params = kuberay.start_params(node_type, params_in, head_ip, autoscaling)
            container = template["spec"]["containers"][0]
            cmd = kuberay.ray_start_command(node_type, params, container.get("resources", {}).get("limits", {}))
            self.pods[name] = Pod(name, ns, labels, ip, f"{self.id}-{name}", node_type, template, params, cmd,
                                  kuberay.probes(node_type, params, container, cluster["rayVersion"]))
        webui_ns, webui_labels = self._webui_labels()
        for i, (name, pod_ns, labels) in enumerate((
            ("operator", "kuberay-operator", {"app.kubernetes.io/name": "kuberay-operator"}),
            ("webui", webui_ns, webui_labels),
            ("other", "default", {"app": "something-else"}),
            ("smoke", ns, smoke_job_pod_labels()),
            ("intruder", ns, {"app": "debug"}),
        )):
            self.pods[name] = Pod(name, pod_ns, labels, f"{SUBNET}.{20 + i}", f"{self.id}-{name}")

    def network_up(self) -> None:
        node = f"{self.id}-node"
        self._add_netns(node)
        sh("ip", "-n", node, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "br0")
        sh("ip", "-n", node, "link", "set", "br0", "up")
        for pod in self.pods.values():
            self._add_netns(pod.netns)
            host_if = f"v{pod.name[:12]}"
            sh("ip", "-n", node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", pod.netns)
            sh("ip", "-n", node, "link", "set", host_if, "master", "br0", "up")
            sh("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/24", "dev", "eth0")
            sh("ip", "-n", pod.netns, "link", "set", "eth0", "up")
            sh("ip", "-n", pod.netns, "route", "add", "default", "via", NODE_IP)
        self.apply_policies()

    def model_fetch_args(self):
        """The worker's model-fetch command as the runtime parses it (dist/'s bucket, model, commit)."""
        from serving.model_store import _parser

        cluster = self.rayservice["spec"]["rayClusterConfig"]
        [fetch] = [c for c in cluster["workerGroupSpecs"][0]["template"]["spec"]["initContainers"]
                   if c["name"] == "model-fetch"]
        return _parser().parse_args(fetch["command"][3:])

    def model_store_up(self, timeout: float = 30) -> str:
        """moto's S3 in the node namespace, dist/'s bucket in it, warmed with the tiny model by the
        operator's `prepare` command (run in the node namespace, where the store is reachable)."""
        node = f"{self.id}-node"
        env = {**os.environ, **POD_IDENTITY_ENV, "AWS_REGION": "us-east-1", "PYTHONPATH": str(REPO)}
        self.s3_proc = subprocess.Popen(
            ["ip", "netns", "exec", node, str(CDK_VENV / "bin" / "python"), "-m", "moto.server", "-H", NODE_IP,
             "-p", str(S3_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while http(node, "GET", f"{S3_URL}/")[0] != 200:
            if time.monotonic() > deadline or self.s3_proc.poll() is not None:
                raise BoxError(f"moto's S3 server did not answer at {S3_URL} within {timeout:.0f}s")
            time.sleep(0.5)
        args = self.model_fetch_args()
        python = str(CDK_VENV / "bin" / "python")
        sh("ip", "netns", "exec", node, python, "-c",
           f"import boto3; boto3.client('s3').create_bucket(Bucket={args.bucket!r})", env=env)
        out = sh("ip", "netns", "exec", node, python, "-m", "serving.model_store", "prepare", "--bucket", args.bucket,
                 "--model", args.model, "--revision", args.revision, "--from", str(self.model_dir), env=env)
        # A warm store also holds a compile of this key, as a first worker's replica publishes it (the
        # CPU engine compiles nothing: one stand-in file, fetched into the artifacts dir and unused).
        compiled = self.state / "compiled"
        compiled.mkdir()
        (compiled / BOX_ARTIFACT).write_text("compiled by an earlier worker\n")
        published = sh("ip", "netns", "exec", node, python, "-m", "serving.model_store", "publish", "--bucket",
                       args.bucket, "--compile-key", args.compile_key, "--artifacts-dir", str(compiled), env=env)
        return f"{out.stdout.strip()}; {published.stdout.strip()}"

    def _add_netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self._netns.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def box_pods(self) -> list[BoxPod]:
        return [BoxPod(p.name, p.namespace, p.labels, p.ip) for p in self.pods.values()]

    def apply_policies(self) -> dict[str, list[list[str]]]:
        applied = {}
        for pod in self.pods.values():
            sh("ip", "netns", "exec", pod.netns, "iptables", "-F", "INPUT")
            sh("ip", "netns", "exec", pod.netns, "iptables", "-F", "OUTPUT")
            rules = iptables_rules(BoxPod(pod.name, pod.namespace, pod.labels, pod.ip), self.policies,
                                   self.box_pods(), NODE_IP)
            for rule in rules:
                sh("ip", "netns", "exec", pod.netns, "iptables", *rule)
            applied[pod.name] = rules
        self.iptables = applied
        return applied

    # --- pods as the kubelet runs them -----------------------------------------------------------

    def _volume_dir(self, pod: Pod, volume: dict) -> dict:
        name = volume["name"]
        if "hostPath" in volume:
            hp = volume["hostPath"]
            assert hp.get("type") == "DirectoryOrCreate", f"hostPath type {hp.get('type')} is not modelled"
            path = self.node_dir / hp["path"].lstrip("/")
            if not path.exists():  # the kubelet: mkdir as root, 0755 (DirectoryOrCreate)
                path.mkdir(parents=True)
                os.chown(path, 0, 0)
                path.chmod(0o755)
            return {"kind": "bind", "source": str(path)}
        fs_group = (pod.template["spec"].get("securityContext") or {}).get("fsGroup")
        path = self.state / "pods" / pod.name / "volumes" / name
        if "emptyDir" in volume:
            ed = volume["emptyDir"]
            if ed.get("medium") == "Memory":
                return {"kind": "tmpfs", "size": kuberay.quantity(ed.get("sizeLimit", "64Mi"))}
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)  # the kubelet creates emptyDir directories 0777
            if fs_group is not None:  # SetVolumeOwnership: group fsGroup, setgid
                os.chown(path, 0, fs_group)
                path.chmod(0o2777)
            return {"kind": "bind", "source": str(path)}
        if "secret" in volume:
            src = volume["secret"]
            if set(src) - {"secretName", "defaultMode", "optional"}:
                raise BoxError(f"volume {name}: secret {sorted(src)} is not modelled by the box")
            data = self.k8s_secrets.get((pod.namespace, src["secretName"]))
            if data is None and not src.get("optional"):
                raise BoxError(f"volume {name}: Secret {pod.namespace}/{src['secretName']} does not exist "
                               "(the kubelet keeps the pod in ContainerCreating)")
            self._atomic_writer(path, data or {}, src.get("defaultMode", 0o644), fs_group)
            return {"kind": "bind", "source": str(path)}
        if "projected" in volume:
            # The box has no API server: a token that opens nothing, the CA and namespace as files.
            files = {}
            for source in volume["projected"]["sources"]:
                if "serviceAccountToken" in source:
                    files[source["serviceAccountToken"]["path"]] = "box-has-no-api-server"
                elif "configMap" in source:
                    files.update({i["path"]: "" for i in source["configMap"].get("items", [])})
                elif "downwardAPI" in source:
                    files.update({i["path"]: pod.namespace for i in source["downwardAPI"]["items"]})
                else:
                    raise BoxError(f"volume {name}: projected source {sorted(source)} is not modelled by the box")
            self._atomic_writer(path, files, 0o644, fs_group)
            return {"kind": "bind", "source": str(path)}
        raise BoxError(f"volume {name}: {sorted(volume)} is not modelled by the box")

    @staticmethod
    def _atomic_writer(path: Path, files: dict[str, str], mode: int, fs_group: int | None) -> None:
        """The kubelet's layout for Secret/projected volumes (pkg/volume/util/atomic_writer.go): the files in a
        timestamped directory, `..data` pointing at it, and one symlink per key through `..data` (a rotation
        swaps `..data` atomically). Owner root, group fsGroup when set, mode defaultMode."""
        shutil.rmtree(path, ignore_errors=True)
        stamp = path / time.strftime("..%Y_%m_%d_%H_%M_%S.box")
        stamp.mkdir(parents=True)
        for key, value in files.items():
            f = stamp / key
            f.write_text(value)
            os.chown(f, 0, fs_group if fs_group is not None else 0)
            f.chmod(mode)
        stamp.chmod(0o755)
        path.chmod(0o755)
        (path / "..data").symlink_to(stamp.name)
        for key in files:
            (path / key).symlink_to(f"..data/{key}")

    def _image_python_mounts(self, pod_dir: Path) -> list[dict]:
        """The serving venv's base interpreter, readable by the container user as the image's Python is.

        A venv points at its base Python (pyvenv.cfg `home`); on a developer machine that is often under
        a private home (/root/.pyenv, 0700). In the pod's mount namespace only: stage it, put a 0755
        tmpfs over the unreadable ancestor, and bind it back at the same path."""
        cfg = dict(line.split(" = ", 1) for line in (SERVING_VENV / "pyvenv.cfg").read_text().splitlines() if " = " in line)
        prefix = Path(cfg["home"]).parent
        blocked = next((a for a in reversed(prefix.parents) if a != Path("/") and not (a.stat().st_mode & 0o005) == 0o005), None)
        if blocked is None:
            return []
        stage = pod_dir / "image-python"
        stage.mkdir(exist_ok=True)
        return [{"kind": "bind", "source": str(prefix), "target": str(stage)},
                {"kind": "tmpfs", "size": 1 << 20, "mode": "0755", "target": str(blocked)},
                {"kind": "mkdir", "target": str(prefix)},
                {"kind": "bind", "source": str(stage), "target": str(prefix)}]

    def _mountpoint(self, target: str) -> None:
        path = Path(target)
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for p in reversed(missing):
            p.mkdir()
            self.created_mountpoints.append(p)

    def _env(self, pod: Pod, container: dict) -> dict[str, str]:
        env = {
            # The image's ENV (serving/Dockerfile) with its Python on PATH: here the serving venv.
            "PATH": f"{SERVING_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.state / "pods" / pod.name / "home"),
            "PYTHONPATH": str(self.app_dir),
            "HF_HOME": f"{IMAGE_HOME}/.cache/huggingface",
            "VLLM_NO_USAGE_STATS": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
            **CPU_ENV,
        }
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]  # the Secret as ESO syncs it (eso_sync)
                if ref.get("optional") and ref["key"] not in self.k8s_secrets.get((pod.namespace, ref["name"]), {}):
                    continue
                env[e["name"]] = self.secret_value(pod.namespace, ref["name"], ref["key"])
            else:
                raise BoxError(f"env {e['name']}: {e.get('valueFrom')} is not modelled by the box")
        if pod.template and pod.template["spec"].get("serviceAccountName") == RAY_WORKER_SERVICE_ACCOUNT:
            env.update(POD_IDENTITY_ENV)  # the only pods with the model store's Pod Identity association
        if pod.node_type:
            env.update(kuberay.operator_env(pod.node_type, self.pods["head"].ip, self.cluster, pod.namespace,
                                            pod.name, pod.labels["ray.io/group"], pod.start_cmd))
        return env

    def _container_spec(self, pod: Pod, c: dict, argv: list[str]) -> dict:
        sc = c.get("securityContext", {})
        if "runAsUser" not in sc:
            # The image's USER (serving/Dockerfile `USER 1000`): what runs when the manifest says nothing.
            sc = {**sc, "runAsUser": 1000, "runAsGroup": 1000}
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            raise BoxError(f"container {c['name']}: only `drop: [ALL]` (+ add) is modelled")
        if sc.get("allowPrivilegeEscalation") is not False:
            raise BoxError(f"container {c['name']}: allowPrivilegeEscalation must be false (modelled as no_new_privs)")
        home = self.state / "pods" / pod.name / "home"
        fs_group = (pod.template["spec"].get("securityContext") or {}).get("fsGroup")
        return {"name": c["name"], "argv": argv, "env": self._env(pod, c), "uid": sc["runAsUser"],
                "gid": sc.get("runAsGroup", 0), "groups": [] if fs_group is None else [fs_group],
                "caps": caps.get("add", []),
                "read_only_root": bool(sc.get("readOnlyRootFilesystem")), "cwd": str(home)}

    def restart_container(self, name: str) -> None:
        """The kubelet's restartPolicy Always: the Ray container exited, so start it again in the same
        pod -- same volumes (emptyDirs included), no init containers -- after its process tree is gone."""
        pod = self.pods[name]
        self.kill_pod(name)
        pod.restarts += 1
        self.start_pod(name, new_pod=False)

    def start_pod(self, name: str, new_pod: bool = True) -> None:
        """Create the pod's sandbox (fresh emptyDirs and /tmp, the node's hostPath kept) and start it."""
        pod = self.pods[name]
        spec = pod.template["spec"]
        pod_dir = self.state / "pods" / pod.name
        if new_pod:
            pod.terminating = False
        for sub in ("volumes", "tmp") if new_pod else ():  # a new pod: new emptyDirs and container filesystem
            shutil.rmtree(pod_dir / sub, ignore_errors=True)
        (pod_dir / "tmp").mkdir(parents=True, exist_ok=True)
        (pod_dir / "tmp").chmod(0o1777)
        home = pod_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, 1000, 1000)  # the image user's home (useradd --create-home)
        volumes = {v["name"]: self._volume_dir(pod, v) for v in spec.get("volumes", [])}
        # The "image" is this checkout: one under /tmp would vanish behind the pod's own /tmp, so stage
        # it outside first and bind it back at its path (as _image_python_mounts does for the Python).
        checkout = [] if not REPO.is_relative_to("/tmp") else [
            {"kind": "mkdir", "target": str(pod_dir / "checkout")},
            {"kind": "bind", "source": str(REPO), "target": str(pod_dir / "checkout")}]
        mounts = [*self._image_python_mounts(pod_dir), *checkout,
                  {"kind": "bind", "source": str(pod_dir / "tmp"), "target": "/tmp"}]
        if checkout:
            mounts.append({"kind": "bind", "source": str(pod_dir / "checkout"), "target": str(REPO)})
        seen = set()
        for c in [*spec.get("initContainers", []), spec["containers"][0]]:
            for vm in c.get("volumeMounts", []):
                if vm["mountPath"] in seen:
                    continue
                seen.add(vm["mountPath"])
                if not vm["mountPath"].startswith("/tmp/"):
                    self._mountpoint(vm["mountPath"])
                mounts.append({**volumes[vm["name"]], "target": vm["mountPath"], "readonly": bool(vm.get("readOnly"))})
        # /tmp/<x> mount points are made inside the pod's own /tmp (the container's filesystem).
        for m in mounts:
            if m["target"].startswith("/tmp/"):
                (pod_dir / "tmp" / m["target"][5:]).mkdir(parents=True, exist_ok=True)
        init = [self._container_spec(pod, c, c["command"] + c.get("args", []))
                for c in (spec.get("initContainers", []) if new_pod else [])]
        main = self._container_spec(pod, spec["containers"][0], kuberay.container_command(pod.start_cmd))
        spec_path = pod_dir / f"spec-{pod.starts}.json"
        spec_path.write_text(json.dumps({"mounts": mounts, "init_containers": init, "container": main}, indent=1))
        pod.log = pod_dir / f"pod-{pod.starts}.log"
        pod.starts += 1
        with open(pod.log, "w") as log:
            pod.proc = subprocess.Popen(
                # A PID namespace of its own, as a container has: `ray stop` (psutil over /proc) must see
                # only this pod's processes, not every Ray process of the box that runs as uid 1000.
                ["ip", "netns", "exec", pod.netns, "unshare", "--mount", "--propagation", "private",
                 "--pid", "--fork", "--mount-proc", "--",
                 sys.executable, str(POD_EXEC), str(spec_path)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill_pod(self, name: str, sig: int = signal.SIGKILL, timeout: float = 20) -> None:
        """Every process in the pod's network namespace (Ray, HAProxy, the engine), as a cgroup kill would."""
        pod = self.pods[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = pod.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        if pod.proc is not None:
            try:
                pod.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if pod.pids():
            raise BoxError(f"pod {name}: processes {pod.pids()} survived SIGKILL")

    # --- probes and the operator -----------------------------------------------------------------

    @property
    def ray_pods(self) -> list[str]:
        return [name for name, pod in self.pods.items() if pod.node_type]

    def exec_in(self, name: str, argv: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
        """`kubectl exec` / an exec probe / an exec hook: the command in the Ray container's namespaces, as
        its user, from the container's working directory (the image's WORKDIR, its home)."""
        pod = self.pods[name]
        uid = (pod.container.get("securityContext") or {}).get("runAsUser", 1000) if pod.template else 1000
        fs_group = ((pod.template or {}).get("spec", {}).get("securityContext") or {}).get("fsGroup")
        groups = [f"--groups={fs_group}"] if fs_group is not None else ["--clear-groups"]
        # The container's namespaces: network, and the pod's mount namespace (its volumes) when running.
        running = pod.proc is not None and pod.proc.poll() is None
        init = self._pod_init_pid(pod) if running else None
        enter = (["nsenter", f"--target={init}", "--mount", "--net", "--pid"] if init
                 else ["ip", "netns", "exec", pod.netns])
        cmd = [*enter, "setpriv", f"--reuid={uid}", f"--regid={uid}", *groups,
               "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--", *argv]
        env = self._env(pod, pod.container) if pod.template else {"PATH": "/usr/bin:/bin"}
        cwd = self.state / "pods" / pod.name / "home" if pod.template else None
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", "timeout")

    @staticmethod
    def _pod_init_pid(pod: Pod) -> int | None:
        """The pod's PID 1 (the container's command): the child `unshare --fork` started."""
        try:
            children = Path(f"/proc/{pod.proc.pid}/task/{pod.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def terminate_pod(self, name: str) -> tuple[subprocess.CompletedProcess | None, float]:
        """The kubelet deleting the pod (an eviction, Karpenter's drain): the Ray container's preStop exec
        hook, bounded by the pod's terminationGracePeriodSeconds, then SIGTERM to the container's PID 1 and
        SIGKILL to every process once the grace period is over. Returns the hook's result (None without a hook) and its seconds."""
        pod = self.pods[name]
        grace = pod.template["spec"].get("terminationGracePeriodSeconds", 30)
        hook = (pod.container.get("lifecycle") or {}).get("preStop", {}).get("exec", {}).get("command")
        pod.terminating = True  # deletionTimestamp set: the pod leaves the Service's ready endpoints
        started = time.monotonic()
        result = self.exec_in(name, list(hook), timeout=grace) if hook else None
        took = time.monotonic() - started
        init = self._pod_init_pid(pod) if pod.proc is not None else None
        if init:  # the runtime's SIGTERM goes to the container's PID 1 only; SIGKILL hits all at the end
            try:
                os.kill(init, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + max(2.0, grace - took)
        while pod.pids() and time.monotonic() < deadline and (pod.proc is None or pod.proc.poll() is None):
            time.sleep(0.2)
        self.kill_pod(name)
        return result, took

    def probe(self, name: str, kind: str = "readiness") -> bool:
        pod = self.pods[name]
        p: kuberay.Probe = pod.probes[kind]
        if p.exec_command:
            return self.exec_in(name, list(p.exec_command)).returncode == 0
        # HTTP probes come from the kubelet on the pod's node.
        status, _ = http(f"{self.id}-node", "GET", f"http://{pod.ip}:{p.http_port}{p.http_path}", timeout=2)
        return 200 <= status < 400

    def operator_dashboard(self) -> str:
        return f"http://{self.pods['head'].ip}:{kuberay.DEFAULT_DASHBOARD_PORT}"

    def operator_deploy(self, serve_config: dict) -> tuple[int, bytes]:
        """KubeRay's UpdateDeployments: PUT the serve config as JSON to the head's dashboard."""
        return http(self.pods["operator"].netns, "PUT", self.operator_dashboard() + "/api/serve/applications/",
                    json.dumps(serve_config).encode(), timeout=30,
                    headers={"Content-Type": "application/json", **self.operator_headers()})

    def operator_app_statuses(self) -> dict[str, dict]:
        """KubeRay's GetMultiApplicationStatus (GET /api/serve/applications/?api_type=declarative)."""
        status, body = http(self.pods["operator"].netns, "GET",
                            self.operator_dashboard() + "/api/serve/applications/?api_type=declarative", timeout=5,
                            headers=self.operator_headers())
        if status != 200:
            return {}
        return json.loads(body).get("applications") or {}

    def operator_update_head_serve_label(self) -> dict:
        """updateHeadPodServeLabel: excluded -> "false"; else GET <head IP>:<serve port>/-/healthz (2 s)."""
        head = self.pods["head"]
        excluded = bool(self.rayservice["spec"].get("excludeHeadPodFromServeSvc"))
        result = {"excluded": excluded, "status": None}
        if excluded:
            head.labels[kuberay.SERVE_LABEL] = "false"
        else:
            port = kuberay.serving_port(head.container)
            status, _ = http(self.pods["operator"].netns, "GET", f"http://{head.ip}:{port}/{kuberay.RAY_SERVE_PROXY_HEALTH_PATH}", timeout=2)
            result["status"] = status
            head.labels[kuberay.SERVE_LABEL] = "true" if status == 200 else "false"
        result["label"] = head.labels[kuberay.SERVE_LABEL]
        return result

    def serve_endpoints(self) -> list[Pod]:
        """The serve Service's ready endpoints: selector {ray.io/cluster, ray.io/serve: "true"} and Ready."""
        out = []
        for name in self.ray_pods:
            pod = self.pods[name]
            if pod.labels.get("ray.io/cluster") == self.cluster and pod.labels.get(kuberay.SERVE_LABEL) == "true" \
                    and not pod.terminating and pod.pids() and self.probe(name, "readiness"):
                out.append(pod)
        return out

    # --- teardown --------------------------------------------------------------------------------

    def close(self) -> None:
        errors = []
        for name in list(self.pods):
            try:
                self.kill_pod(name)
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                errors.append(str(exc))
        if self.s3_proc is not None and self.s3_proc.poll() is None:
            os.killpg(self.s3_proc.pid, signal.SIGKILL)
            self.s3_proc.wait(timeout=10)
        for netns in reversed(self._netns):
            sh("ip", "netns", "del", netns, check=False)
        for p in reversed(self.created_mountpoints):
            try:
                p.rmdir()
            except OSError:
                pass
        if os.environ.get("CLUSTER_BOX_KEEP"):
            print(f"cluster box state kept in {self.state}")
        else:
            shutil.rmtree(self.state, ignore_errors=True)
        if errors:
            raise BoxError("; ".join(errors))

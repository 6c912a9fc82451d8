"""The RayService carries the blueprint's values for every preset, and the parts KubeRay is picky about."""

from __future__ import annotations

import json
import math
import shlex

import pytest
import yaml

from config import names
from config.presets import PRESETS
from config.secrets import API_KEY_ENV, API_KEYS_DIR, API_KEYS_SECRET, RAY_AUTH_SECRET
from config.versions import RAY_VERSION
from k8s_charts import rayservice as rs
from k8s_charts.serve_config import WEIGHTS_DIR, compiled_artifacts_dir, model_compile_key
from tests.support.charts import IMAGE, VARIANTS, find

PRESET_VARIANTS = sorted(v for v in VARIANTS if v.startswith("preset-"))


def _cluster(files):
    return find(files, "RayService", names.RAYSERVICE_NAME)["spec"]["rayClusterConfig"]


def _worker(files):
    groups = _cluster(files)["workerGroupSpecs"]
    assert len(groups) == 1
    return groups[0]


# --- the three readers of rayStartParams.resources --------------------------------------------------

def read_by_bash(value: str) -> dict:
    """KubeRay writes `ray start ... --resources=VALUE` into a bash command line."""
    [arg] = [a for a in shlex.split(f"ray start --resources={value} --block") if a.startswith("--resources=")]
    return json.loads(arg.split("=", 1)[1])


def read_by_kuberay(value: str) -> dict:
    """KubeRay 1.7 getResourcesMap: strings.Trim(s, "'\\"` ") then json.Unmarshal."""
    return json.loads(value.strip("'\"` "))


def read_by_autoscaler(value: str) -> dict:
    """Ray autoscaler _get_custom_resources: drop first/last char, drop backslashes, ints only."""
    parsed = json.loads(value[1:-1].replace("\\", ""))
    assert all(isinstance(v, int) for v in parsed.values()), "autoscaler requires integer resources"
    return parsed


READERS = (read_by_bash, read_by_kuberay, read_by_autoscaler)


@pytest.mark.parametrize("variant", PRESET_VARIANTS)
def test_neuron_cores_param_is_read_identically_by_bash_kuberay_and_autoscaler(synthesized, variant):
    cfg, files = synthesized[variant]
    value = _worker(files)["rayStartParams"]["resources"]
    assert value == "'{\"neuron_cores\":%d}'" % cfg.preset.neuron_cores  # the exact string
    for reader in READERS:
        assert reader(value) == {"neuron_cores": cfg.preset.neuron_cores}, reader.__name__


@pytest.mark.parametrize("bad, broken_reader", [
    ('{"neuron_cores": 2}', read_by_autoscaler),           # unquoted: crash-loops the autoscaler
    ('"{\\"neuron_cores\\": 2}"', read_by_kuberay),         # the blueprint's form: KubeRay 1.7 cannot parse it
    ("'{\"neuron_cores\": 2.0}'", read_by_autoscaler),      # floats are rejected by the autoscaler
])
def test_wrongly_quoted_params_break_a_reader(bad, broken_reader):
    with pytest.raises((ValueError, AssertionError)):
        broken_reader(bad)


def test_resources_param_builder_rejects_bad_values():
    assert rs.ray_resources_param({"neuron_cores": 24}) == "'{\"neuron_cores\":24}'"
    for bad in ({}, {"neuron_cores": 0}, {"neuron_cores": 2.0}, {"neuron cores": 2}):
        with pytest.raises(rs.RayServiceError, match="rayStartParams.resources"):
            rs.ray_resources_param(bad)


# --- blueprint values --------------------------------------------------------------------------------

def test_names_and_namespace(synthesized):
    _, files = synthesized["env-dev"]
    obj = find(files, "RayService")
    assert obj["metadata"]["name"] == "vllm-llama3-inf2" == names.RAYSERVICE_NAME
    assert obj["metadata"]["namespace"] == "vllm" == names.VLLM_NAMESPACE
    # KubeRay names the serve Service <name>-serve-svc from the head port named "serve".
    assert f"{obj['metadata']['name']}-serve-svc" == names.SERVE_SERVICE_NAME == "vllm-llama3-inf2-serve-svc"
    cluster = obj["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == RAY_VERSION
    assert cluster["enableInTreeAutoscaling"] is True
    assert "headService" not in cluster["headGroupSpec"]  # KubeRay 1.x rejects a named head Service
    assert "serveService" not in obj["spec"]


def test_head(synthesized):
    _, files = synthesized["env-dev"]
    head = _cluster(files)["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    spec = head["template"]["spec"]
    assert spec["nodeSelector"] == {names.NODE_ROLE_LABEL: names.CORE_NODE_ROLE}
    assert "tolerations" not in spec
    [c] = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"gcs": 6379, "dashboard": 8265, "client": 10001, "serve": 8000, "metrics": 8080}
    assert c["resources"]["requests"] == c["resources"]["limits"]


@pytest.mark.parametrize("variant", PRESET_VARIANTS)
def test_worker_group_per_preset(synthesized, variant):
    cfg, files = synthesized[variant]
    p = cfg.preset
    w = _worker(files)
    per_node = p.neuron_cores // p.tensor_parallel_size
    assert w["minReplicas"] == math.ceil(cfg.min_replicas / per_node)
    assert w["maxReplicas"] == math.ceil(cfg.max_replicas / per_node)
    assert w["replicas"] == w["minReplicas"]
    spec = w["template"]["spec"]
    assert spec["schedulerName"] == names.NEURON_SCHEDULER_NAME
    assert spec["nodeSelector"] == {
        names.NODEPOOL_LABEL: names.NODEPOOL_TRN1 if p.instance_type.startswith("trn1") else names.NODEPOOL_INF2,
        "node.kubernetes.io/instance-type": p.instance_type,
    }
    assert {"key": names.NEURON_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    [c] = spec["containers"]
    expected = {"cpu": str(p.worker_cpu), "memory": f"{p.worker_memory_gib}Gi", names.NEURON_RESOURCE: str(p.neuron_devices)}
    assert c["resources"]["requests"] == expected == c["resources"]["limits"]
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    # Fits the instance with room for the system (config/presets.py validates the same).
    assert p.worker_cpu < p.vcpus and p.worker_memory_gib < p.memory_gib


@pytest.mark.parametrize("variant", PRESET_VARIANTS)
def test_serve_config_per_preset(synthesized, variant):
    cfg, files = synthesized[variant]
    p = cfg.preset
    serve = yaml.safe_load(find(files, "RayService")["spec"]["serveConfigV2"])
    [app] = serve["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == ("vllm", "/", "serving.app:build_app")
    args = app["args"]
    assert args["tensor_parallel_size"] == p.tensor_parallel_size == args["neuron_cores"]
    assert (args["max_model_len"], args["max_num_seqs"], args["block_size"]) == (p.max_model_len, p.max_num_seqs, p.block_size)
    # The engine loads the model store's local copy; clients see the hub id.
    assert (args["model"], args["served_model_name"], args["device"]) == (WEIGHTS_DIR, cfg.model_id, "neuron")
    assert args["compiled_artifacts_dir"] == compiled_artifacts_dir(model_compile_key(cfg))
    [dep] = app["deployments"]
    assert dep["name"] == "VLLMDeployment"
    assert dep["ray_actor_options"]["resources"] == {"neuron_cores": p.tensor_parallel_size}
    auto = dep["autoscaling_config"]
    assert (auto["min_replicas"], auto["max_replicas"]) == (cfg.min_replicas, cfg.max_replicas)
    # All replicas of a full node fit its CPUs and NeuronCores.
    per_node = p.neuron_cores // p.tensor_parallel_size
    assert per_node * dep["ray_actor_options"]["num_cpus"] <= p.worker_cpu
    assert per_node * p.tensor_parallel_size <= p.neuron_cores


def test_preset_switch_is_one_value(synthesized):
    small, big = synthesized["preset-inf2.8xlarge"][1], synthesized["preset-inf2.48xlarge"][1]
    assert _worker(small)["template"]["spec"]["containers"][0]["resources"]["limits"][names.NEURON_RESOURCE] == "1"
    assert _worker(big)["template"]["spec"]["containers"][0]["resources"]["limits"][names.NEURON_RESOURCE] == "12"
    assert _worker(big)["rayStartParams"]["resources"] == "'{\"neuron_cores\":24}'"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_images_pinned_and_never_pulled_always(synthesized, variant):
    _, files = synthesized[variant]
    cluster = _cluster(files)
    containers = [c for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]] for c in g["template"]["spec"]["containers"]]
    containers += find(files, "Deployment")["spec"]["template"]["spec"]["containers"]
    for c in containers:
        assert c["image"] == IMAGE or c["name"] == "open-webui"
        assert not c["image"].endswith(":latest") and ":" in c["image"].rsplit("/", 1)[-1]
        assert c["imagePullPolicy"] == "IfNotPresent"


def _groups(files):
    cluster = _cluster(files)
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]


def test_api_keys_are_a_read_only_volume_on_head_and_workers(synthesized):
    """The named keys arrive as files (one per key, serving/keys.py reads the directory), not as the old
    single VLLM_API_KEY env var; read-only, 0440, readable through the pods' fsGroup only."""
    from k8s_charts import vllm_chart
    _, files = synthesized["env-dev"]
    for group in _groups(files):
        spec = group["template"]["spec"]
        [c] = spec["containers"]
        env = {e["name"]: e for e in c["env"]}
        assert API_KEY_ENV not in env and "HF_TOKEN" not in env  # no env key; no token configured for dev
        [mount] = [m for m in c["volumeMounts"] if m["mountPath"] == API_KEYS_DIR]
        assert mount["readOnly"] is True
        [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"] == {"secretName": API_KEYS_SECRET, "defaultMode": 0o440}
        assert spec["securityContext"]["fsGroup"] == vllm_chart.RAY_GID == c["securityContext"]["runAsGroup"]


def test_hf_token_from_secret_when_configured(synthesized):
    _, files = synthesized["dev-hf-ingress"]
    worker_env = {e["name"]: e for e in _worker(files)["template"]["spec"]["containers"][0]["env"]}
    assert worker_env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
    es = find(files, "ExternalSecret", "hf-token")
    assert es["spec"]["data"][0]["remoteRef"]["key"] == "llama3/hf-token"


def test_worker_cache_is_an_empty_dir_with_a_size_limit(synthesized):
    """Baseline Pod Security forbids hostPath: the cache (HF_HOME, compiled artifacts) is an emptyDir,
    bounded well inside the Neuron node's root volume."""
    from k8s_charts import vllm_chart
    from config.node_io import NEURON_ROOT_GIB
    _, files = synthesized["env-dev"]
    args = yaml.safe_load(find(files, "RayService")["spec"]["serveConfigV2"])["applications"][0]["args"]
    spec = _worker(files)["template"]["spec"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if args["compiled_artifacts_dir"].startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume == {"name": vllm_chart.MODEL_CACHE_VOLUME, "emptyDir": {"sizeLimit": f"{vllm_chart.MODEL_CACHE_SIZE_LIMIT_GIB}Gi"}}
    assert vllm_chart.MODEL_CACHE_SIZE_LIMIT_GIB <= NEURON_ROOT_GIB // 2  # room for the image, logs, the kubelet
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["HF_HOME"].startswith(mount["mountPath"] + "/")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_pod_of_the_rayservice_uses_what_baseline_forbids(synthesized, variant):
    """What the baseline Pod Security Standard (enforced on `vllm`) rejects: hostPath, host namespaces,
    privileged containers, capabilities beyond the default set, hostPort."""
    allowed_caps = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
    _, files = synthesized[variant]
    for group in _groups(files):
        spec = group["template"]["spec"]
        assert not any("hostPath" in v for v in spec.get("volumes", [])), spec["volumes"]
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"))
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            sc = c.get("securityContext", {})
            assert not sc.get("privileged") and set(sc.get("capabilities", {}).get("add", [])) <= allowed_caps
            assert not any(p.get("hostPort") for p in c.get("ports", []))
    ns = find(files, "Namespace", names.VLLM_NAMESPACE)["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "baseline"
    assert ns["pod-security.kubernetes.io/audit"] == ns["pod-security.kubernetes.io/warn"] == "restricted"


# --- Ray token auth and the Kubernetes API token ------------------------------------------------------

def test_ray_token_auth_is_on_with_the_synced_secret(synthesized):
    from config.secrets import RAY_AUTH_TOKEN_KEY
    _, files = synthesized["env-dev"]
    assert _cluster(files)["authOptions"] == {"mode": "token", "secretName": RAY_AUTH_SECRET}
    es = find(files, "ExternalSecret", RAY_AUTH_SECRET)
    assert es["metadata"]["namespace"] == names.VLLM_NAMESPACE
    assert [d["secretKey"] for d in es["spec"]["data"]] == [RAY_AUTH_TOKEN_KEY] == ["auth_token"]  # KubeRay 1.7's key


def test_ray_containers_get_no_kubernetes_api_token(synthesized):
    """automountServiceAccountToken off on both pods; only KubeRay's autoscaler sidecar mounts a
    projected token, at the path the Ray autoscaler's client reads."""
    from k8s_charts import vllm_chart
    cluster = _cluster(synthesized["env-dev"][1])
    for group in _groups(synthesized["env-dev"][1]):
        spec = group["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            assert not any(m["mountPath"].startswith("/var/run/secrets/kubernetes.io") for m in c["volumeMounts"]), c["name"]
    [mount] = cluster["autoscalerOptions"]["volumeMounts"]
    assert mount == {"name": vllm_chart.AUTOSCALER_TOKEN_VOLUME, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                     "readOnly": True}
    head_volumes = {v["name"]: v for v in cluster["headGroupSpec"]["template"]["spec"]["volumes"]}
    sources = head_volumes[mount["name"]]["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert sources[1]["configMap"] == {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert cluster["enableInTreeAutoscaling"] is True  # the only reason the head's ServiceAccount has a token


def test_autoscaler_token_path_is_the_one_ray_reads():
    """ray/autoscaler/_private/kuberay/node_provider.py of the serving venv's Ray (the image's version)."""
    import re
    from pathlib import Path
    from k8s_charts import vllm_chart
    found = list(Path(__file__).resolve().parents[2].glob(".venv-serving/lib/python3*/site-packages/ray/autoscaler/"
                                                           "_private/kuberay/node_provider.py"))
    if not found:
        pytest.skip(".venv-serving is not installed")
    source = found[0].read_text()
    token = re.search(r'IN_CLUSTER_TOKEN_PATH = "([^"]+)"', source).group(1)
    ca = re.search(r'IN_CLUSTER_CA_CERT_PATH = "([^"]+)"', source).group(1)
    assert (token, ca) == (f"{vllm_chart.SERVICE_ACCOUNT_DIR}/token", f"{vllm_chart.SERVICE_ACCOUNT_DIR}/ca.crt")


# --- KubeRay's operator-side checks ------------------------------------------------------------------

def _spec(**over):
    head = rs.HeadGroup(pod_template={"spec": {"containers": [{"name": "h", "image": "x"}]}}, ray_start_params={"num-cpus": "0"})
    worker = rs.WorkerGroup("g", {"spec": {"containers": [{"name": "w", "image": "x"}]}}, 1, 2,
                            ray_start_params={"resources": rs.ray_resources_param({"neuron_cores": 2})})
    kw = dict(name="vllm-llama3-inf2", namespace="vllm", ray_version="2.60.0", serve_config_v2="applications: []",
              head=head, workers=(worker,))
    kw.update(over)
    return rs.RayServiceSpec(**kw)


def test_builder_accepts_a_good_spec():
    assert rs.kuberay_errors(_spec()) == []
    assert rs.kuberay_errors(_spec(auth=rs.AuthOptions(secret_name="ray-auth-token"))) == []
    assert _spec(auth=rs.AuthOptions(secret_name="s")).to_manifest()["spec"]["rayClusterConfig"]["authOptions"] == {
        "mode": "token", "secretName": "s"}


@pytest.mark.parametrize("over, field", [
    (dict(name="x" * 48), "metadata.name"),
    (dict(name="1bad"), "metadata.name"),
    (dict(serve_config_v2=" "), "serveConfigV2"),
    (dict(annotations={rs.INITIALIZING_TIMEOUT_ANNOTATION: "soon"}), "initializing-timeout"),
    (dict(workers=(rs.WorkerGroup("g", {"spec": {"containers": [{}]}}, 3, 2),)), "minReplicas"),
    (dict(workers=(rs.WorkerGroup("g", {"spec": {"containers": [{}]}}, 1, 2, ray_start_params={"resources": "{neuron_cores: 2}"}),)), "resources"),
    (dict(workers=(rs.WorkerGroup("g", {"spec": {"containers": [{}]}}, 1, 2, ray_start_params={"labels": "a=b"}),)), "labels"),
    (dict(head=rs.HeadGroup(pod_template={"spec": {"containers": []}})), "container"),
    (dict(auth=rs.AuthOptions(mode="disabled")), "authOptions.mode"),
    (dict(auth=rs.AuthOptions(mode="")), "authOptions.mode"),
    (dict(auth=rs.AuthOptions(), ray_version="2.51.0"), "2.52.0"),
    (dict(auth=rs.AuthOptions(enable_k8s_token_auth=True)), "enableK8sTokenAuth"),
    (dict(auth=rs.AuthOptions(secret_name="Bad_Name")), "secretName"),
    (dict(autoscaler=rs.AutoscalerOptions(volume_mounts=({"name": "missing", "mountPath": "/x"},))), "volumeMounts"),
])
def test_builder_rejects_what_kuberay_rejects(over, field):
    with pytest.raises(rs.RayServiceError, match=field):
        _spec(**over).to_manifest()


# --- the serving contract ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_args_are_accepted_by_the_serving_app(synthesized, variant):
    from serving.settings import ServingSettings
    from k8s_charts.serve_config import ARG_KEYS
    _, files = synthesized[variant]
    args = yaml.safe_load(find(files, "RayService")["spec"]["serveConfigV2"])["applications"][0]["args"]
    assert tuple(args) == ARG_KEYS
    settings = ServingSettings.from_args(args)
    assert settings.to_args() == args


def test_serving_app_rejects_a_broken_contract(synthesized):
    from serving.settings import ServingSettings, SettingsError
    _, files = synthesized["env-dev"]
    args = yaml.safe_load(find(files, "RayService")["spec"]["serveConfigV2"])["applications"][0]["args"]
    with pytest.raises(SettingsError, match="neuron_cores"):
        ServingSettings.from_args({**args, "neuron_cores": args["tensor_parallel_size"] + 1})


def test_ray_serve_env_on_every_ray_pod(synthesized):
    from serving.settings import RAY_SERVE_ENV
    cluster = _cluster(synthesized["env-dev"][1])
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        env = {e["name"]: e.get("value") for e in group["template"]["spec"]["containers"][0]["env"]}
        assert RAY_SERVE_ENV.items() <= env.items()


# --- the Ray containers' user (issue 9 item 2) --------------------------------------------------------

@pytest.mark.parametrize("variant", ["env-dev", "env-prod"])
def test_worker_writes_its_cache_without_a_root_init_container(synthesized, variant):
    """The cache is an emptyDir (0777, fsGroup-owned): the Ray container's own uid creates HF_HOME and the
    compiled-artifacts directory, so the root `cache-permissions` init container is gone; the one init
    container left (model-fetch) runs as the same non-root user. tests/cluster_box runs the pod for real."""
    _, files = synthesized[variant]
    spec = _worker(files)["template"]["spec"]
    [ray] = spec["containers"]
    assert (ray["securityContext"]["runAsUser"], ray["securityContext"]["runAsGroup"]) == (1000, 1000)
    assert ray["securityContext"]["runAsNonRoot"] is True
    assert [c["name"] for c in spec["initContainers"]] == ["model-fetch"]
    assert spec["initContainers"][0]["securityContext"] == ray["securityContext"]


def test_every_ray_container_runs_as_the_image_user(synthesized):
    cluster = _cluster(synthesized["env-dev"][1])
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        for c in group["template"]["spec"]["containers"]:
            assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (1000, 1000), c["name"]
    assert cluster["autoscalerOptions"]["securityContext"]["runAsUser"] == 1000


# --- the head and the serve Service (issue 9 item 7) ----------------------------------------------------

def test_head_is_excluded_from_the_serve_service(synthesized):
    """KubeRay 1.7 then never health-checks the head's proxy; the serve Service holds the ready workers."""
    obj = find(synthesized["env-dev"][1], "RayService")
    assert obj["spec"]["excludeHeadPodFromServeSvc"] is True
    assert _cluster(synthesized["env-dev"][1])["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_builder_emits_exclude_head_only_when_set():
    assert "excludeHeadPodFromServeSvc" not in _spec().to_manifest()["spec"]
    assert _spec(exclude_head_pod_from_serve_svc=True).to_manifest()["spec"]["excludeHeadPodFromServeSvc"] is True


# --- the model store (issue 12) ------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["env-dev", "env-prod", "preset-trn1.32xlarge"])
def test_worker_fetches_from_the_model_store_before_its_engine_starts(synthesized, variant):
    """The model-fetch init container's command is one the runtime's own parser accepts, names this
    environment's bucket, model, commit and compile key, and writes where the engine reads (the
    serve args' model and compiled_artifacts_dir) on the model-cache volume the Ray container mounts."""
    from config.model_store import bucket_name
    from serving.model_store import _parser

    cfg, files = synthesized[variant]
    spec = _worker(files)["template"]["spec"]
    [fetch] = spec["initContainers"]
    assert fetch["command"][:3] == ["python", "-m", "serving.model_store"]
    args = _parser().parse_args(fetch["command"][3:])
    serve_args = yaml.safe_load(find(files, "RayService")["spec"]["serveConfigV2"])["applications"][0]["args"]
    assert args.command == "fetch"
    assert args.bucket == bucket_name(cfg.cluster_name, cfg.account or "000000000000", cfg.region)
    assert (args.model, args.revision) == (cfg.model_id, cfg.model_revision)
    assert (args.weights_dir, args.artifacts_dir) == (serve_args["model"], serve_args["compiled_artifacts_dir"])
    assert args.compile_key == model_compile_key(cfg) and args.artifacts_dir.endswith(args.compile_key)
    # A waiter gives the winner's compile its budgeted time (config/cold_start.py) before compiling itself.
    from config.cold_start import compile_seconds
    assert compile_seconds(cfg.worker_shape.preset) < args.wait_s < cfg.worker_shape.cold_start.budget_seconds
    [ray] = spec["containers"]
    mount = {m["name"]: m["mountPath"] for m in ray["volumeMounts"]}["model-cache"]
    assert fetch["volumeMounts"] == [{"name": "model-cache", "mountPath": mount}]
    assert args.weights_dir.startswith(mount + "/") and args.artifacts_dir.startswith(mount + "/")
    # Its identity is the ray-worker service account (Pod Identity), with no Kubernetes API token.
    assert spec["serviceAccountName"] == names.RAY_WORKER_SERVICE_ACCOUNT and spec["automountServiceAccountToken"] is False
    sa = find(files, "ServiceAccount", names.RAY_WORKER_SERVICE_ACCOUNT)
    assert sa["metadata"]["namespace"] == names.VLLM_NAMESPACE and sa["automountServiceAccountToken"] is False
    # No more than the Ray container asks for: the init container never raises the pod's request.
    assert all(fetch["resources"]["limits"][k] == ray["resources"]["limits"][k] for k in ("cpu", "memory"))
    assert not any(v.get("hostPath") for v in spec["volumes"])


def test_compile_key_follows_every_compile_input():
    from dataclasses import replace

    from config.environments import load_config

    cfg = load_config({"env": "dev"})
    key = model_compile_key(cfg)
    assert model_compile_key(replace(cfg, model_revision="b" * 40)) != key
    assert model_compile_key(load_config({"env": "dev", "accelerator_preset": "inf2.48xlarge"})) != key

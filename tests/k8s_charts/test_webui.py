"""Open WebUI: pinned image, Service 80 -> 8080, the serve endpoint and key, persistent data, hardening;
the admin bootstrapped from a Secret with signup off, the key read from the environment, egress fenced
(issue 11, item 6), and a pod spec that the restricted Pod Security Standard admits."""

from __future__ import annotations

import subprocess

import pytest

from config import names
from config.secrets import (API_KEY_SECRET, API_KEY_SECRET_KEY, WEBUI_ADMIN_PASSWORD_KEY, WEBUI_ADMIN_SECRET,
                            WEBUI_SECRET, WEBUI_SECRET_KEY)
from config.versions import OPEN_WEBUI_IMAGE
from config.webui import ADMIN_EMAIL, COMMON_ENV, check_admin_email
from k8s_charts.vllm_chart import APP_LABELS as RAY_APP_LABELS, HEAD_SERVES_TRAFFIC
from tests.support.charts import docs, find


WEBUI = {"app": "open-webui"}


def _pod(files):
    return find(files, "Deployment", "open-webui")["spec"]["template"]


def test_deployment_and_service(synthesized):
    _, files = synthesized["env-dev"]
    dep = find(files, "Deployment", "open-webui")
    assert dep["metadata"]["namespace"] == "openai-webui" == names.WEBUI_NAMESPACE
    assert dep["spec"]["strategy"] == {"type": "Recreate"}  # RWO volume + SQLite: one pod at a time
    svc = find(files, "Service", "open-webui")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080}]
    # The Service selects exactly the Deployment's pods.
    assert svc["spec"]["selector"].items() <= _pod(files)["metadata"]["labels"].items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= _pod(files)["metadata"]["labels"].items()


def test_image_pinned(synthesized):
    _, files = synthesized["env-dev"]
    [c] = _pod(files)["spec"]["containers"]
    assert c["image"] == OPEN_WEBUI_IMAGE and not c["image"].endswith((":main", ":latest"))
    assert c["imagePullPolicy"] == "IfNotPresent"


def test_env_points_at_serve_service_with_key_from_secret(synthesized):
    _, files = synthesized["env-dev"]
    env = {e["name"]: e for e in _pod(files)["spec"]["containers"][0]["env"]}
    assert env["OPENAI_API_BASE_URLS"]["value"] == "http://vllm-llama3-inf2-serve-svc.vllm.svc.cluster.local:8000/v1"
    assert env["OPENAI_API_KEYS"]["valueFrom"]["secretKeyRef"] == {"name": API_KEY_SECRET, "key": API_KEY_SECRET_KEY}
    assert env["WEBUI_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": WEBUI_SECRET, "key": WEBUI_SECRET_KEY}
    for key, value in COMMON_ENV.items():
        assert env[key]["value"] == value
    # Read from the environment at every start, not from the database the first start wrote.
    assert env["ENABLE_PERSISTENT_CONFIG"]["value"] == "false"


SECRET_ENV = {"OPENAI_API_KEYS", "WEBUI_SECRET_KEY", "WEBUI_ADMIN_PASSWORD"}


def test_no_secret_has_a_literal_value(synthesized):
    _, files = synthesized["env-dev"]
    spec = _pod(files)["spec"]
    for c in spec["containers"] + spec["initContainers"]:
        for e in c["env"]:
            if e["name"] in SECRET_ENV:
                assert set(e) == {"name", "valueFrom"} and "secretKeyRef" in e["valueFrom"], e
                assert "optional" not in e["valueFrom"]["secretKeyRef"]  # a missing Secret: the pod waits


def test_admin_bootstrapped_from_the_secret_and_signup_off(synthesized):
    _, files = synthesized["env-dev"]
    env = {e["name"]: e for e in _pod(files)["spec"]["containers"][0]["env"]}
    assert env["ENABLE_SIGNUP"]["value"] == "false"
    assert env["WEBUI_ADMIN_EMAIL"]["value"] == ADMIN_EMAIL
    assert env["WEBUI_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": WEBUI_ADMIN_SECRET, "key": WEBUI_ADMIN_PASSWORD_KEY}
    # What would let a non-admin escalate or run code stays off (config/webui.py says why).
    for name in ("USER_PERMISSIONS_WORKSPACE_TOOLS_ACCESS", "USER_PERMISSIONS_WORKSPACE_TOOLS_IMPORT",
                 "USER_PERMISSIONS_FEATURES_DIRECT_TOOL_SERVERS", "ENABLE_DIRECT_CONNECTIONS", "ENABLE_API_KEYS"):
        assert env[name]["value"] == "false", name
    assert env["DEFAULT_USER_ROLE"]["value"] == "pending"


@pytest.mark.parametrize("email", ["", "admin", "admin@localhost", "a b@example.com", " admin@example.com"])
def test_a_bad_admin_email_names_the_field(email):
    with pytest.raises(ValueError, match="ADMIN_EMAIL"):
        check_admin_email(email)


def _precheck(files, password: str, key: str = "k3y") -> subprocess.CompletedProcess:
    """The init container's own command, run with this password and key (sh, as in the image)."""
    [init] = _pod(files)["spec"]["initContainers"]
    env = {"PATH": "/usr/bin:/bin", "WEBUI_ADMIN_PASSWORD": password, "OPENAI_API_KEYS": key}
    return subprocess.run(init["command"], env=env, capture_output=True, text=True, timeout=30)


def test_the_pod_does_not_start_with_an_unusable_admin_password_or_key(synthesized):
    """With no usable password Open WebUI creates no admin and its first signup becomes one."""
    _, files = synthesized["env-dev"]
    [init] = _pod(files)["spec"]["initContainers"]
    assert init["image"] == OPEN_WEBUI_IMAGE
    assert {e["name"] for e in init["env"]} == {"WEBUI_ADMIN_PASSWORD", "OPENAI_API_KEYS"}
    assert _precheck(files, "p" * 32).returncode == 0
    for password, key, says in [("", "k3y", "WEBUI_ADMIN_PASSWORD is empty"),
                                ("p" * 73, "k3y", "longer than 72 bytes"),
                                ("é" * 37, "k3y", "longer than 72 bytes"),  # bytes, not characters
                                ("p" * 32, "", "OPENAI_API_KEYS is empty")]:
        result = _precheck(files, password, key)
        assert result.returncode != 0 and says in result.stderr, (password[:3], result.stderr)
        assert WEBUI_ADMIN_SECRET in result.stderr or API_KEY_SECRET in result.stderr  # says which Secret to fix


def test_data_on_gp3_pvc(synthesized):
    _, files = synthesized["env-dev"]
    pvc = find(files, "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "gp3" == names.GP3_STORAGE_CLASS
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    spec = _pod(files)["spec"]
    vol = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v)
    assert vol["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == vol["name"])
    assert mount["mountPath"] == "/app/backend/data"


def test_probes_resources_and_non_root(synthesized):
    _, files = synthesized["env-dev"]
    spec = _pod(files)["spec"]
    [c] = spec["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] == 8080
    assert set(c["resources"]) == {"requests", "limits"}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] >= 10000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in spec["containers"] + spec["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
    ns = find(files, "Namespace", "openai-webui")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "namespace" not in ns["metadata"]


# --- Pod Security Standard `restricted`, checked statically -------------------------------------------
# The rules of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (Kubernetes 1.30+:
# baseline + restricted) that a pod spec alone decides; the admission controller checks the same fields.
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def restricted_violations(spec: dict) -> list[str]:
    """Why the restricted profile would reject this pod spec (empty: it is admitted)."""
    out = []
    pod_sc = spec.get("securityContext") or {}
    containers = [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"spec.{field}")
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {v['name']}: {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    for s in pod_sc.get("sysctls", []):
        if s["name"] not in SAFE_SYSCTLS:
            out.append(f"sysctl {s['name']}")
    if pod_sc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for c in containers:
        sc, name = c.get("securityContext") or {}, c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation must be false")
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            out.append(f"{name}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile {seccomp!r}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in caps.get("drop", []):
            out.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds {caps['add']}")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            out.append(f"{name}: hostPort")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"{name}: procMount")
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            out.append(f"{name}: appArmor Unconfined")
        se = sc.get("seLinuxOptions") or {}
        if se.get("user") or se.get("role") or se.get("type", "") not in ("", "container_t", "container_init_t",
                                                                          "container_kvm_t", "container_engine_t"):
            out.append(f"{name}: seLinuxOptions")
    return out


def test_pod_passes_the_restricted_pod_security_standard(synthesized):
    _, files = synthesized["env-dev"]
    assert restricted_violations(_pod(files)["spec"]) == []


@pytest.mark.parametrize("breach, rule", [
    (lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
    (lambda s: s["initContainers"][0]["securityContext"].pop("capabilities"), "drop ALL"),
    (lambda s: (s["securityContext"].pop("runAsNonRoot"), s["containers"][0]["securityContext"].pop("runAsNonRoot")),
     "runAsNonRoot"),
    (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
    (lambda s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}), "hostPath"),
    (lambda s: s.update(hostNetwork=True), "hostNetwork"),
])
def test_the_restricted_check_bites(synthesized, breach, rule):
    import copy
    _, files = synthesized["env-dev"]
    spec = copy.deepcopy(_pod(files)["spec"])
    breach(spec)
    assert any(rule in v for v in restricted_violations(spec)), restricted_violations(spec)


# --- egress: only the serve port and DNS ------------------------------------------------------------
RAY = {"app.kubernetes.io/name": names.RAYSERVICE_NAME, "app.kubernetes.io/part-of": "llama3-inf2"}
assert RAY == RAY_APP_LABELS, "the labels vllm_chart.py gives the Ray pods"
WORKER = {**RAY, "ray.io/node-type": "worker"}
HEAD = {**RAY, "ray.io/node-type": "head"}
DNS = {"k8s-app": "kube-dns"}


def _selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are evaluated here"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def egress_allowed(policies, src_labels, dst_ns, dst_labels, port, protocol="TCP") -> bool:
    """Whether a pod in openai-webui may connect, as a CNI evaluates egress (ipBlock peers never match)."""
    selecting = [p for p in policies if p["metadata"]["namespace"] == names.WEBUI_NAMESPACE
                 and "Egress" in p["spec"].get("policyTypes", []) and _selects(p["spec"]["podSelector"], src_labels)]
    if not selecting:
        return True
    for p in selecting:
        for rule in p["spec"].get("egress") or []:
            ports = rule.get("ports") or []
            if ports and not any(pp.get("port") == port and pp.get("protocol", "TCP") == protocol for pp in ports):
                continue
            peers = rule.get("to")
            if not peers or any("ipBlock" not in peer
                                and _selects(peer.get("namespaceSelector", {}), {"kubernetes.io/metadata.name": dst_ns})
                                and _selects(peer.get("podSelector", {}), dst_labels) for peer in peers):
                return True
    return False


@pytest.fixture(scope="module", params=["env-dev", "dev-hf-ingress"])
def policies(synthesized, request):
    return [d for d in docs(synthesized[request.param][1]) if d["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("src", [WEBUI, {"app": "anything-else"}])
def test_egress_reaches_the_serve_port_and_dns_only(policies, src):
    assert egress_allowed(policies, src, "vllm", WORKER, 8000)
    assert egress_allowed(policies, src, "kube-system", DNS, 53, "UDP")
    assert egress_allowed(policies, src, "kube-system", DNS, 53, "TCP")
    # Only the serve Service's backends: the head too if it took serve traffic (it does not).
    assert not HEAD_SERVES_TRAFFIC, "the head serves now: let network_policies._webui_egress reach it too"
    assert not egress_allowed(policies, src, "vllm", HEAD, 8000)
    for port in (6379, 8265, 10001, 8080, 52365):
        assert not egress_allowed(policies, src, "vllm", WORKER, port), port
    assert not egress_allowed(policies, src, "vllm", {"app": "not-ray"}, 8000)
    assert not egress_allowed(policies, src, "default", WORKER, 8000)  # same labels, other namespace
    assert not egress_allowed(policies, src, "kube-system", {"k8s-app": "other"}, 53, "UDP")
    assert not egress_allowed(policies, src, "kube-system", DNS, 443)  # the API server, IMDS, the internet:
    assert not egress_allowed(policies, src, "anywhere", {}, 443)  # nothing else


def test_egress_is_one_policy_over_the_whole_namespace(policies):
    [egress] = [p for p in policies if "Egress" in p["spec"]["policyTypes"]]
    assert egress["metadata"]["name"] == "webui-egress" and egress["spec"]["podSelector"] == {}
    assert egress["spec"]["policyTypes"] == ["Egress"]  # ingress stays with default-deny-ingress

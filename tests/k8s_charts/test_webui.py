"""Open WebUI: pinned image, Service 80 -> 8080, the serve endpoint and key, persistent data, hardening."""

from __future__ import annotations

from config import names
from config.secrets import API_KEY_ENV, API_KEY_SECRET
from config.versions import OPEN_WEBUI_IMAGE
from config.webui import COMMON_ENV
from tests.support.charts import find


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
    assert env["OPENAI_API_KEYS"]["valueFrom"]["secretKeyRef"] == {"name": API_KEY_SECRET, "key": API_KEY_ENV}
    assert "valueFrom" in env["WEBUI_SECRET_KEY"]
    for key, value in COMMON_ENV.items():
        assert env[key]["value"] == value
    assert not any("value" in e and "key" in e["name"].lower() for e in env.values())  # no literal keys


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
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    ns = find(files, "Namespace", "openai-webui")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "namespace" not in ns["metadata"]

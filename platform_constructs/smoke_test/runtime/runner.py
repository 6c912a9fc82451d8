"""Smoke-test Lambda: reports the RayService's readiness, and runs check.py (beside it) as a Job.

The pipeline's post-deployment step (pipeline_step.py, beside it) invokes this function in the
environment's account and VPC, in two modes:

  {"mode": "status"}  one read of the RayService CR (and its Ray pods): ready / failed / a summary.
                      Quick, so the step can poll it for as long as the cold-start budget says
                      (config/cold_start.py), far beyond Lambda's 15-minute limit.
  {"mode": "check"}   (the default) starts a Job in the serving namespace that waits for the API and
                      calls it with the API key from the synced Secret, and returns the Job's result
                      line -- or raises, which fails the pipeline step.

The function talks to the cluster's private API endpoint with an EKS token of its own role. Its access
entry puts that role in a Kubernetes group bound to a namespaced Role (platform_constructs/
smoke_test/__init__.py): EKS access policies do not cover custom resources such as rayservices.

Configuration (environment variables, set by the ObservabilityStack): CLUSTER_NAME, CLUSTER_ENDPOINT,
CLUSTER_CA (base64 PEM), NAMESPACE, RAYSERVICE, CONFIGMAP (holds check.py), IMAGE, BASE_URL, MODEL,
API_KEY_SECRET, API_KEY_SECRET_KEY, TIMEOUT_SECONDS, API_WAIT_SECONDS.
Standard library + boto3/botocore only (both are in the Lambda Python runtime).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from typing import Callable

RESULT_MARKER = "SMOKE-RESULT "
TOKEN_PREFIX = "k8s-aws-v1."


class SmokeTestFailed(RuntimeError):
    pass


class KubeApiError(SmokeTestFailed):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def eks_token(cluster_name: str, region: str, session=None) -> str:
    """A bearer token for the EKS API server: a presigned STS GetCallerIdentity URL (as `aws eks get-token`)."""
    import boto3
    from botocore.signers import RequestSigner

    session = session or boto3.Session(region_name=region)
    sts = session.client("sts", region_name=region)
    signer = RequestSigner(sts.meta.service_model.service_id, region, "sts", "v4",
                           session.get_credentials(), sts.meta.events)
    url = signer.generate_presigned_url({
        "method": "GET",
        "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {}, "headers": {"x-k8s-aws-id": cluster_name}, "context": {},
    }, region_name=region, expires_in=60, operation_name="")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def job_manifest(name: str, *, namespace: str, configmap: str, image: str, base_url: str, model: str,
                 api_key_secret: str, api_key_secret_key: str, deadline_seconds: int,
                 api_wait_seconds: int = 0) -> dict:
    """The smoke Job: one try, non-root, read-only, gone an hour after it finished."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "smoke-test"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "smoke-test"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "smoke",
                        "image": image,
                        "command": ["python", "/smoke/check.py", "--base-url", base_url, "--model", model,
                                    "--wait-seconds", str(api_wait_seconds)],
                        "env": [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {
                            "name": api_key_secret, "key": api_key_secret_key, "optional": True}}}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "smoke", "mountPath": "/smoke", "readOnly": True}],
                    }],
                    "volumes": [{"name": "smoke", "configMap": {"name": configmap}}],
                },
            },
        },
    }


def parse_result(log: str) -> dict | None:
    for line in reversed(log.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                return json.loads(line[len(RESULT_MARKER):])
            except ValueError:
                return None
    return None


class Kubernetes:
    """The few REST calls the smoke test needs, over urllib with the cluster's CA."""

    def __init__(self, endpoint: str, ca_pem: bytes, token: str):
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(ca_pem)
        self.ssl = ssl.create_default_context(cafile=f.name)

    def call(self, method: str, path: str, body: dict | None = None, raw: bool = False):
        req = urllib.request.Request(self.endpoint + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as resp:
                data = resp.read()
        except urllib.error.HTTPError as exc:
            raise KubeApiError(f"Kubernetes API {method} {path}: HTTP {exc.code}: {exc.read()[:300]!r}", exc.code) from None
        return data.decode(errors="replace") if raw else json.loads(data)


def run_job(kube: Kubernetes, manifest: dict, *, timeout_seconds: float, poll_seconds: float = 10.0,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict:
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    kube.call("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", manifest)
    deadline = clock() + timeout_seconds
    status: dict = {}
    while clock() < deadline:
        status = kube.call("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}").get("status", {})
        if status.get("succeeded") or status.get("failed"):
            break
        sleep(poll_seconds)
    else:
        raise SmokeTestFailed(f"smoke Job {ns}/{name} did not finish within {timeout_seconds:.0f} s (status {status})")
    pods = kube.call("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3D{name}").get("items", [])
    log = "".join(kube.call("GET", f"/api/v1/namespaces/{ns}/pods/{p['metadata']['name']}/log", raw=True) for p in pods)
    result = parse_result(log) or {"ok": False, "error": f"no result line in the Job's log: {log[-500:]!r}"}
    if not status.get("succeeded") or not result.get("ok"):
        raise SmokeTestFailed(f"smoke test of {ns}/{name} failed: {result.get('error', result)}")
    return result


# --- status mode: the RayService as KubeRay v1.7.0 reports it --------------------------------------
# ray-project/kuberay v1.7.0, ray-operator/apis/ray/v1/rayservice_types.go: status.conditions holds
# type "Ready" (RayServiceReady: requests can be served and numServeEndpoints > 0); its reason
# "InitializingTimeout" is terminal (the RayService must be recreated), "ValidationFailed" needs a
# spec fix. status.serviceStatus "Running" is the deprecated equivalent of Ready=True.
READY_CONDITION = "Ready"
TERMINAL_REASONS = ("InitializingTimeout", "ValidationFailed")
RAY_POD_SELECTOR = "ray.io%2Fnode-type"  # every pod KubeRay creates carries this label


def _pod_line(pod: dict) -> str:
    """`name: phase (why it waits)` for one pod, from the fields kubectl describe shows first."""
    name = pod.get("metadata", {}).get("name", "?")
    status = pod.get("status", {})
    why = []
    for cond in status.get("conditions", []):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            why.append(f"{cond.get('reason', 'Unschedulable')}: {cond.get('message', '')[:160]}")
    for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        waiting = cs.get("state", {}).get("waiting")
        if waiting:
            why.append(f"{cs.get('name')} {waiting.get('reason', 'waiting')}")
        elif cs.get("state", {}).get("running") and not cs.get("ready"):
            why.append(f"{cs.get('name')} running, not ready")
    return f"{name}: {status.get('phase', 'Unknown')}" + (f" ({'; '.join(why)})" if why else "")


def rayservice_status(rayservice: dict | None, pods: list[dict]) -> dict:
    """ready / failed / a one-line summary of a RayService object (None: not created yet) and its pods."""
    pod_text = ", ".join(_pod_line(p) for p in pods) or "no Ray pods yet"
    if rayservice is None:
        return {"ready": False, "failed": False, "summary": f"RayService not created yet; pods: {pod_text}"}
    status = rayservice.get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c.get("type") == READY_CONDITION), None)
    if ready is not None:
        is_ready = ready.get("status") == "True"
        state = f"Ready={ready.get('status')} ({ready.get('reason', '')}: {ready.get('message', '')[:200]})"
    else:  # no conditions yet: the deprecated field, else nothing reported
        is_ready = status.get("serviceStatus") == "Running"
        state = f"serviceStatus={status.get('serviceStatus') or 'none'}"
    failed = bool(ready) and not is_ready and ready.get("reason") in TERMINAL_REASONS
    apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or \
        (status.get("pendingServiceStatus") or {}).get("applicationStatuses") or {}
    app_text = ", ".join(f"{n} {a.get('status', '?')}" for n, a in sorted(apps.items())) or "none yet"
    summary = (f"{state}; serve endpoints {status.get('numServeEndpoints', 0)}; applications: {app_text}; "
               f"pods: {pod_text}")
    return {"ready": is_ready, "failed": failed, "summary": summary,
            "reason": (ready or {}).get("reason", ""), "numServeEndpoints": status.get("numServeEndpoints", 0)}


def read_status(kube, namespace: str, name: str) -> dict:
    try:
        rayservice = kube.call("GET", f"/apis/ray.io/v1/namespaces/{namespace}/rayservices/{name}")
    except KubeApiError as exc:
        if exc.code != 404:
            raise
        rayservice = None
    pods = kube.call("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={RAY_POD_SELECTOR}").get("items", [])
    return rayservice_status(rayservice, pods)


def handler(event, context):
    env = os.environ
    region = env["AWS_REGION"]
    mode = (event or {}).get("mode", "check")
    if mode not in ("status", "check"):
        raise SmokeTestFailed(f"mode: {mode!r} is not one of 'status', 'check'")
    kube = Kubernetes(env["CLUSTER_ENDPOINT"], base64.b64decode(env["CLUSTER_CA"]),
                      eks_token(env["CLUSTER_NAME"], region))
    if mode == "status":
        result = read_status(kube, env["NAMESPACE"], env["RAYSERVICE"])
        print(json.dumps(result))
        return result
    name = f"smoke-{int(time.time())}"
    timeout = float(env.get("TIMEOUT_SECONDS", "600"))
    if context is not None:
        timeout = min(timeout, context.get_remaining_time_in_millis() / 1000.0 - 20)
    api_wait = max(0, min(int(env.get("API_WAIT_SECONDS", "0")), int(timeout) - 120))  # room for the chat call
    manifest = job_manifest(
        name, namespace=env["NAMESPACE"], configmap=env["CONFIGMAP"], image=env["IMAGE"],
        base_url=env["BASE_URL"], model=env["MODEL"], api_key_secret=env["API_KEY_SECRET"],
        api_key_secret_key=env["API_KEY_SECRET_KEY"], deadline_seconds=int(timeout), api_wait_seconds=api_wait,
    )
    result = run_job(kube, manifest, timeout_seconds=timeout)
    print(json.dumps(result))
    return result

"""Smoke-test Lambda: runs tools/smoke/check.py as a Kubernetes Job inside the cluster and reports.

The pipeline's post-deployment step invokes this function (in the environment's account and VPC);
the function talks to the cluster's private API endpoint with an EKS token of its own role (an access
entry allows it Jobs and pod logs in the serving namespace only), starts a Job in the serving
namespace that calls the serve Service with the API key from the synced Secret, waits for it, and
returns the Job's result line -- or raises, which fails the pipeline step.

Configuration (environment variables, set by the ObservabilityStack): CLUSTER_NAME, CLUSTER_ENDPOINT,
CLUSTER_CA (base64 PEM), NAMESPACE, CONFIGMAP (holds check.py), IMAGE, BASE_URL, MODEL,
API_KEY_SECRET, API_KEY_SECRET_KEY, TIMEOUT_SECONDS.
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
                 api_key_secret: str, api_key_secret_key: str, deadline_seconds: int) -> dict:
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
                        "command": ["python", "/smoke/check.py", "--base-url", base_url, "--model", model],
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
            raise SmokeTestFailed(f"Kubernetes API {method} {path}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
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


def handler(event, context):
    env = os.environ
    region = env["AWS_REGION"]
    name = f"smoke-{int(time.time())}"
    timeout = float(env.get("TIMEOUT_SECONDS", "600"))
    if context is not None:
        timeout = min(timeout, context.get_remaining_time_in_millis() / 1000.0 - 20)
    manifest = job_manifest(
        name, namespace=env["NAMESPACE"], configmap=env["CONFIGMAP"], image=env["IMAGE"],
        base_url=env["BASE_URL"], model=env["MODEL"], api_key_secret=env["API_KEY_SECRET"],
        api_key_secret_key=env["API_KEY_SECRET_KEY"], deadline_seconds=int(timeout),
    )
    kube = Kubernetes(env["CLUSTER_ENDPOINT"], base64.b64decode(env["CLUSTER_CA"]),
                      eks_token(env["CLUSTER_NAME"], region))
    result = run_job(kube, manifest, timeout_seconds=timeout)
    print(json.dumps(result))
    return result

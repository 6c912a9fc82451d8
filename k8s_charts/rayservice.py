"""A small typed builder for KubeRay's RayService (ray.io/v1), checked the way KubeRay 1.7 checks it.

cdk8s-plus has no RayService, and importing the 1 MB CRD as generated classes would add thousands of
lines for a handful of fields. These dataclasses cover what this project sets; `to_manifest()` emits the
plain object that `cdk8s.ApiObject` renders. `kuberay_errors()` reproduces the operator-side checks of
KubeRay 1.7 (utils/validation.go) that the CRD schema cannot express, so a mistake fails at synth time
instead of as an event on a live cluster. The CRD schema and CEL rules are checked in the tests against
the real CRD.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

API_VERSION = "ray.io/v1"
KIND = "RayService"
# KubeRay 1.7 limits (utils/constant.go): the RayCluster name gets a 6-char suffix added.
MAX_RAYSERVICE_NAME_LENGTH = 47
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Annotation KubeRay 1.7 reads: a RayService still not ready after this long fails (terminally).
INITIALIZING_TIMEOUT_ANNOTATION = "ray.io/initializing-timeout"


# Labels KubeRay 1.7 puts on every pod of a RayCluster (common/pod.go labelPod); the template's own
# labels are added on top, except ray.io/node-type, ray.io/group and ray.io/cluster.
RAY_NODE_LABELS = {"ray.io/is-ray-node": "yes"}
NODE_TYPE_LABEL = "ray.io/node-type"  # "head" | "worker"
# authOptions (KubeRay 1.7, apis/ray/v1/raycluster_types.go AuthOptions): the operator enforces token
# auth only for mode == "token" (utils.IsAuthEnabled); the CRD has no default, so an authOptions without
# a mode leaves Ray open even though the type's comment says "Defaults to token".
AUTH_MODE_TOKEN = "token"
# validation.go ValidateRayClusterSpec: token auth needs Ray 2.52.0 or later.
MIN_RAY_VERSION_FOR_TOKEN_AUTH = (2, 52, 0)


class RayServiceError(ValueError):
    """A RayService KubeRay would reject; the message names the field."""


def ray_resources_param(resources: Mapping[str, int]) -> str:
    """The `rayStartParams.resources` value declaring custom Ray resources, quoted for all three readers.

    The one string is read by (1) bash, in the `ray start ... --resources=VALUE` command KubeRay writes
    into the container; (2) KubeRay 1.7 itself (getResourcesMap: trims quote characters, then parses
    JSON, so backslash escapes break it); (3) the Ray autoscaler (drops the first and last character,
    deletes backslashes, parses JSON, requires integer values). A single-quoted compact JSON object
    -- the form KubeRay writes itself -- satisfies all three. The blueprint's '"{\\"neuron_cores\\": 2}"'
    passes (1) and (3) but fails (2); an unquoted JSON object crash-loops the autoscaler.
    """
    if not resources:
        raise RayServiceError("rayStartParams.resources: declare at least one resource")
    for name, value in resources.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise RayServiceError(f"rayStartParams.resources: {name!r} is not a valid Ray resource name")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RayServiceError(
                f"rayStartParams.resources: {name}={value!r} must be a positive integer (the autoscaler rejects floats)"
            )
    return "'" + json.dumps(dict(resources), separators=(",", ":"), sort_keys=True) + "'"


@dataclass(frozen=True)
class HeadGroup:
    pod_template: dict[str, Any]
    ray_start_params: dict[str, str] = field(default_factory=dict)

    def to_manifest(self) -> dict[str, Any]:
        # No headService here: KubeRay 1.x rejects a RayService whose head Service has a name, and it
        # derives the serve Service name (<rayservice>-serve-svc) itself.
        return {"rayStartParams": dict(self.ray_start_params), "template": self.pod_template}


@dataclass(frozen=True)
class WorkerGroup:
    group_name: str
    pod_template: dict[str, Any]
    min_replicas: int
    max_replicas: int
    replicas: int | None = None  # None: start at min_replicas
    ray_start_params: dict[str, str] = field(default_factory=dict)
    idle_timeout_seconds: int | None = None

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "groupName": self.group_name,
            "replicas": self.min_replicas if self.replicas is None else self.replicas,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "rayStartParams": dict(self.ray_start_params),
            "template": self.pod_template,
        }
        if self.idle_timeout_seconds is not None:
            out["idleTimeoutSeconds"] = self.idle_timeout_seconds
        return out


@dataclass(frozen=True)
class AutoscalerOptions:
    """The in-tree Ray autoscaler sidecar KubeRay adds to the head pod. `volume_mounts` are appended
    to the sidecar only (KubeRay 1.7 common/pod.go mergeAutoscalerOverrides); they name volumes of
    the head pod template."""
    idle_timeout_seconds: int = 600
    upscaling_mode: str = "Default"  # "Conservative" | "Default" | "Aggressive"
    resources: dict[str, Any] | None = None
    security_context: dict[str, Any] | None = None
    volume_mounts: tuple[dict[str, Any], ...] = ()

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"idleTimeoutSeconds": self.idle_timeout_seconds, "upscalingMode": self.upscaling_mode}
        if self.resources:
            out["resources"] = self.resources
        if self.security_context:
            out["securityContext"] = self.security_context
        if self.volume_mounts:
            out["volumeMounts"] = [dict(m) for m in self.volume_mounts]
        return out


@dataclass(frozen=True)
class AuthOptions:
    """Ray token auth. With `secret_name`, KubeRay uses that Secret (data key `auth_token`) instead of
    generating one per RayCluster; it injects RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (secretKeyRef) into
    the Ray container, KubeRay's wait-gcs-ready init container and the autoscaler sidecar, and sends the
    token as `x-ray-authorization: Bearer` on its own dashboard calls (ray-project/kuberay v1.7.0
    common/pod.go SetContainerTokenAuthEnvVars, raycluster_controller.go reconcileAuthSecret,
    utils/util.go GetRayDashboardClientFunc, dashboardclient/dashboard_httpclient.go)."""
    mode: str = AUTH_MODE_TOKEN
    secret_name: str | None = None
    enable_k8s_token_auth: bool = False

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode}
        if self.secret_name:
            out["secretName"] = self.secret_name
        if self.enable_k8s_token_auth:
            out["enableK8sTokenAuth"] = True
        return out


@dataclass(frozen=True)
class RayServiceSpec:
    name: str
    namespace: str
    ray_version: str
    serve_config_v2: str
    head: HeadGroup
    workers: tuple[WorkerGroup, ...]
    enable_in_tree_autoscaling: bool = True
    autoscaler: AutoscalerOptions | None = None
    auth: AuthOptions | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # KubeRay 1.7 (rayservice_controller.go updateHeadPodServeLabel): False -> on every reconcile the
    # operator GETs <head pod IP>:<serve port>/-/healthz and sets the head's ray.io/serve label from
    # the answer; True -> the label stays "false", the head never joins the serve Service and the
    # operator never calls the head's serve port.
    exclude_head_pod_from_serve_svc: bool = False

    def to_manifest(self) -> dict[str, Any]:
        errors = kuberay_errors(self)
        if errors:
            raise RayServiceError(f"RayService {self.namespace}/{self.name}: " + "; ".join(errors))
        cluster: dict[str, Any] = {
            "rayVersion": self.ray_version,
            "enableInTreeAutoscaling": self.enable_in_tree_autoscaling,
            "headGroupSpec": self.head.to_manifest(),
            "workerGroupSpecs": [w.to_manifest() for w in self.workers],
        }
        if self.autoscaler is not None:
            cluster["autoscalerOptions"] = self.autoscaler.to_manifest()
        if self.auth is not None:
            cluster["authOptions"] = self.auth.to_manifest()
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        spec: dict[str, Any] = {"serveConfigV2": self.serve_config_v2, "rayClusterConfig": cluster}
        if self.exclude_head_pod_from_serve_svc:
            spec["excludeHeadPodFromServeSvc"] = True
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _containers(template: Mapping[str, Any]) -> list[dict]:
    return list(((template or {}).get("spec") or {}).get("containers") or [])


def _group_errors(name: str, params: Mapping[str, str], template: Mapping[str, Any]) -> list[str]:
    errors = []
    if not _containers(template):
        errors.append(f"{name}: the pod template needs at least one container")
    for key, value in params.items():
        if not isinstance(value, str):
            errors.append(f"{name}.rayStartParams.{key}: must be a string, got {type(value).__name__}")
    if "labels" in params:
        errors.append(f"{name}.rayStartParams.labels: not supported by KubeRay 1.7; use the group's labels field")
    if "resources" in params and isinstance(params["resources"], str):
        raw = params["resources"].strip("'\"` ")
        try:
            parsed = json.loads(raw)
            assert isinstance(parsed, dict)
        except (ValueError, AssertionError):
            errors.append(
                f"{name}.rayStartParams.resources: {params['resources']!r} is not a quoted JSON object KubeRay "
                "can parse; build it with ray_resources_param()"
            )
    return errors


def kuberay_errors(spec: RayServiceSpec) -> list[str]:
    """Operator-side validation of KubeRay 1.7 (ValidateRayServiceMetadata/Spec) for what we set."""
    errors = []
    if len(spec.name) > MAX_RAYSERVICE_NAME_LENGTH:
        errors.append(f"metadata.name: {spec.name!r} is longer than {MAX_RAYSERVICE_NAME_LENGTH} characters")
    if not _DNS1035.match(spec.name):
        errors.append(f"metadata.name: {spec.name!r} must be a DNS-1035 label (lowercase, starts with a letter)")
    timeout = spec.annotations.get(INITIALIZING_TIMEOUT_ANNOTATION)
    if timeout is not None and not re.fullmatch(r"[1-9]\d*|([1-9]\d*(h|m|s))+", timeout):
        errors.append(f"metadata.annotations[{INITIALIZING_TIMEOUT_ANNOTATION}]: {timeout!r} must be like '90m' or seconds")
    if not spec.serve_config_v2.strip():
        errors.append("spec.serveConfigV2: empty; the RayService would deploy no application")
    errors += _group_errors("headGroupSpec", spec.head.ray_start_params, spec.head.pod_template)
    errors += _auth_errors(spec)
    if spec.autoscaler is not None and spec.autoscaler.volume_mounts:
        # Not KubeRay's check but the API server's: a mount of a volume the pod lacks rejects the head pod.
        head_volumes = {v.get("name") for v in (spec.head.pod_template.get("spec") or {}).get("volumes") or []}
        for m in spec.autoscaler.volume_mounts:
            if m.get("name") not in head_volumes:
                errors.append(f"autoscalerOptions.volumeMounts: {m.get('name')!r} is not a volume of the head pod template")
    names = [w.group_name for w in spec.workers]
    if len(set(names)) != len(names):
        errors.append(f"workerGroupSpecs: duplicate groupName in {names}")
    for w in spec.workers:
        where = f"workerGroupSpecs[{w.group_name}]"
        errors += _group_errors(where, w.ray_start_params, w.pod_template)
        if w.min_replicas < 0 or w.max_replicas < 0:
            errors.append(f"{where}: minReplicas/maxReplicas must not be negative")
        if w.min_replicas > w.max_replicas:
            errors.append(f"{where}: minReplicas {w.min_replicas} is greater than maxReplicas {w.max_replicas}")
        if w.replicas is not None and not (w.min_replicas <= w.replicas <= w.max_replicas):
            errors.append(f"{where}: replicas {w.replicas} is outside [{w.min_replicas}, {w.max_replicas}]")
        if w.idle_timeout_seconds is not None and not spec.enable_in_tree_autoscaling:
            errors.append(f"{where}: idleTimeoutSeconds needs enableInTreeAutoscaling")
    return errors


def _version(text: str) -> tuple[int, ...] | None:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?.*", text or "")
    return tuple(int(x or 0) for x in m.groups()) if m else None


def _auth_errors(spec: RayServiceSpec) -> list[str]:
    """KubeRay 1.7 validation.go (ValidateRayClusterSpec, ValidateRayServiceSpec) for authOptions, plus
    the one trap it does not report: a mode other than "token" silently leaves Ray unauthenticated."""
    auth = spec.auth
    if auth is None:
        return []
    errors = []
    if auth.mode != AUTH_MODE_TOKEN:
        errors.append(f"authOptions.mode: {auth.mode!r} leaves Ray's dashboard, GCS and client ports "
                      f"unauthenticated; set {AUTH_MODE_TOKEN!r} (KubeRay applies no default)")
    version = _version(spec.ray_version)
    if auth.mode == AUTH_MODE_TOKEN and (version is None or version < MIN_RAY_VERSION_FOR_TOKEN_AUTH):
        errors.append(f"authOptions.mode 'token': rayVersion {spec.ray_version!r} must be 2.52.0 or later")
    if auth.enable_k8s_token_auth:
        errors.append("authOptions.enableK8sTokenAuth: not supported for a RayService by KubeRay 1.7")
    if auth.secret_name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", auth.secret_name):
        errors.append(f"authOptions.secretName: {auth.secret_name!r} is not a valid Secret name")
    return errors

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
    """The in-tree Ray autoscaler sidecar KubeRay adds to the head pod."""
    idle_timeout_seconds: int = 600
    upscaling_mode: str = "Default"  # "Conservative" | "Default" | "Aggressive"
    resources: dict[str, Any] | None = None
    security_context: dict[str, Any] | None = None

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"idleTimeoutSeconds": self.idle_timeout_seconds, "upscalingMode": self.upscaling_mode}
        if self.resources:
            out["resources"] = self.resources
        if self.security_context:
            out["securityContext"] = self.security_context
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

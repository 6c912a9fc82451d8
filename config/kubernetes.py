"""What every Kubernetes object the platform writes shares: standard labels and security defaults.

Two kinds of writer use it: the cdk8s charts (k8s_charts/, through k8s_charts/objects.py) and the
CDK constructs that apply a few objects directly (platform_constructs/observability/agent.py). It sits
in config/ because both layers read it and neither may import the other (tests/test_architecture.py).
"""

from __future__ import annotations

from typing import Any

from config.project import PART_OF_LABELS

# The seccomp profile the restricted Pod Security Standard requires on every pod.
RUNTIME_DEFAULT_SECCOMP = {"type": "RuntimeDefault"}


# Pod Security Standards levels (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
BASELINE = "baseline"
RESTRICTED = "restricted"
_PSS_LEVELS = (BASELINE, RESTRICTED)


def pod_security_labels(enforce: str, *, audit_warn: str = RESTRICTED) -> dict[str, str]:
    """Namespace labels of Pod Security Admission: `enforce` rejects a pod below that level; audit and
    warn at `audit_warn` (at least as strict) keep the gap to the stricter level visible in the API
    server's audit log and in kubectl's warnings."""
    if enforce not in _PSS_LEVELS or audit_warn not in _PSS_LEVELS:
        raise ValueError(f"pod security levels must be one of {_PSS_LEVELS}, got {enforce!r}/{audit_warn!r}")
    if _PSS_LEVELS.index(audit_warn) < _PSS_LEVELS.index(enforce):
        raise ValueError(f"audit_warn {audit_warn!r} is weaker than enforce {enforce!r}")
    prefix = "pod-security.kubernetes.io"
    return {f"{prefix}/enforce": enforce, f"{prefix}/audit": audit_warn, f"{prefix}/warn": audit_warn}


def name_label(name: str) -> dict[str, str]:
    """`app.kubernetes.io/name` alone: objects of a platform tool (the smoke test) rather than the app."""
    return {"app.kubernetes.io/name": name}


def app_labels(name: str) -> dict[str, str]:
    """`app.kubernetes.io/name` plus the project's `part-of`: the labels a workload's pods carry."""
    return {**name_label(name), **PART_OF_LABELS}


def pod_security() -> dict[str, Any]:
    """Pod-level securityContext: RuntimeDefault seccomp (a fresh dict: callers may extend it)."""
    return {"seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP)}


def container_security(uid: int | None, gid: int | None = None, *, read_only_root: bool = False,
                       add_capabilities: tuple[str, ...] = ()) -> dict[str, Any]:
    """A container's securityContext: a fixed uid/gid, no privilege escalation, every capability
    dropped except `add_capabilities`, RuntimeDefault seccomp. uid 0 is allowed (runAsNonRoot false)
    only for a container that needs it; uid None keeps the image's own user (a vendor image that
    documents none, e.g. the CloudWatch agent)."""
    ctx: dict[str, Any] = {} if uid is None else {
        "runAsUser": uid,
        "runAsGroup": uid if gid is None else gid,
        "runAsNonRoot": uid != 0,
    }
    ctx.update({"allowPrivilegeEscalation": False, "privileged": False})
    if read_only_root:
        ctx["readOnlyRootFilesystem"] = True
    ctx["capabilities"] = {"drop": ["ALL"], **({"add": list(add_capabilities)} if add_capabilities else {})}
    ctx["seccompProfile"] = dict(RUNTIME_DEFAULT_SECCOMP)
    return ctx

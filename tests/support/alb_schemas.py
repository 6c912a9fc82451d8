"""The AWS Load Balancer Controller's documented surface for the pinned version, as test data (issue 13):
its IngressClassParams CRD schema and its Ingress annotation names (sources in the data files)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

from config.versions import AWS_LOAD_BALANCER_CONTROLLER_VERSION
from tests.support.crd_validator import _to_json_schema

DATA = Path(__file__).parent / "data"
ANNOTATIONS_FILE = DATA / f"alb_ingress_annotations_{AWS_LOAD_BALANCER_CONTROLLER_VERSION}.txt"
INGRESS_CLASS_PARAMS_FILE = DATA / f"ingressclassparams_v1beta1_{AWS_LOAD_BALANCER_CONTROLLER_VERSION}.json"
PREFIX = "alb.ingress.kubernetes.io/"


@functools.cache
def documented_annotations() -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact names, family prefixes) without the alb.ingress.kubernetes.io/ prefix."""
    names = [line.strip() for line in ANNOTATIONS_FILE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return frozenset(n for n in names if not n.endswith(".")), tuple(n for n in names if n.endswith("."))


def unknown_annotations(obj: dict) -> list[str]:
    """The controller's annotations on `obj` that its docs do not list (which it would silently ignore)."""
    exact, families = documented_annotations()
    out = []
    for key in (obj.get("metadata", {}).get("annotations") or {}):
        if key.startswith(PREFIX):
            name = key[len(PREFIX):]
            if name not in exact and not any(name.startswith(f) and len(name) > len(f) for f in families):
                out.append(key)
    return out


@functools.cache
def _params_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(INGRESS_CLASS_PARAMS_FILE.read_text())["openAPIV3Schema"]
    return jsonschema.Draft4Validator(_to_json_schema(schema, top=True))


def ingress_class_params_errors(obj: dict) -> list[str]:
    if obj.get("apiVersion") != "elbv2.k8s.aws/v1beta1":
        return [f"apiVersion {obj.get('apiVersion')}: the controller serves elbv2.k8s.aws/v1beta1"]
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _params_validator().iter_errors(obj)]


def policy_atoms(statements: list[dict]) -> set[tuple[str, str, str, str]]:
    """(effect, action, resource, condition) of every statement: equal for two documents that grant the
    same, however CDK merged or reordered their statements (@aws-cdk/aws-iam:minimizePolicies)."""
    def listed(v):
        return [v] if isinstance(v, str) else list(v)
    return {(st["Effect"], action, resource, json.dumps(st.get("Condition"), sort_keys=True))
            for st in statements for action in listed(st["Action"]) for resource in listed(st["Resource"])}

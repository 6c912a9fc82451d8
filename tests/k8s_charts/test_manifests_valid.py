"""Every manifest the charts emit is valid: built-in kinds with kubernetes-validate (strict, at the
environment's Kubernetes version), the RayService against KubeRay 1.7's CRD (schema + CEL), the External
Secrets objects against the fields ESO v1 requires. Negative cases prove each check bites."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest

from tests.support.alb_schemas import ingress_class_params_errors
from tests.support.charts import VARIANTS, docs, find
from tests.support.crd_validator import validate_custom_resource

# ESO's CRDs are not among the pinned ones (make crds): check the fields ESO v1 requires and the values it accepts.
_ESO_SCHEMAS = {
    "ExternalSecret": {
        "type": "object", "required": ["metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name", "namespace"]},
            "spec": {
                "type": "object", "required": ["secretStoreRef", "target", "data"], "additionalProperties": False,
                "properties": {
                    "refreshInterval": {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"},
                    "secretStoreRef": {
                        "type": "object", "required": ["name", "kind"], "additionalProperties": False,
                        "properties": {"name": {"type": "string", "minLength": 1},
                                       "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}},
                    },
                    "target": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"name": {"type": "string"},
                                       "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                                       "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]}},
                    },
                    "data": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["secretKey", "remoteRef"], "additionalProperties": False,
                        "properties": {"secretKey": {"type": "string", "pattern": r"^[-._a-zA-Z0-9]+$"},
                                       # ESO v1 ExternalSecretDataRemoteRef (external-secrets.io/v1 CRD):
                                       # property = one field of a JSON value; absent = the whole value.
                                       "remoteRef": {"type": "object", "required": ["key"], "additionalProperties": False,
                                                     "properties": {"key": {"type": "string", "minLength": 1},
                                                                    "property": {"type": "string", "minLength": 1},
                                                                    "version": {"type": "string"},
                                                                    "metadataPolicy": {"enum": ["None", "Fetch"]},
                                                                    "conversionStrategy": {"enum": ["Default", "Unicode"]},
                                                                    "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]}}}},
                    }},
                },
            },
        },
    },
    "ClusterSecretStore": {
        "type": "object", "required": ["metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"], "not": {"required": ["namespace"]}},
            "spec": {
                "type": "object", "required": ["provider"], "additionalProperties": False,
                "properties": {
                    "conditions": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                   "properties": {"namespaces": {"type": "array", "items": {"type": "string"}}}}},
                    "provider": {"type": "object", "required": ["aws"], "properties": {"aws": {
                        "type": "object", "required": ["service", "region"],
                        "properties": {"service": {"enum": ["SecretsManager", "ParameterStore"]},
                                       "region": {"type": "string", "pattern": r"^[a-z]{2}(-[a-z]+)+-\d$"}},
                    }}},
                },
            },
        },
    },
}


def validation_errors(doc: dict, k8s_version: str) -> list[str]:
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    if group == "ray.io":
        return validate_custom_resource(doc)
    if group == "elbv2.k8s.aws":
        return ingress_class_params_errors(doc) if doc["kind"] == "IngressClassParams" else [f"no schema for {doc['kind']}"]
    if group == "external-secrets.io":
        if doc["apiVersion"] != "external-secrets.io/v1":
            return [f"apiVersion {doc['apiVersion']}: use external-secrets.io/v1"]
        schema = _ESO_SCHEMAS.get(doc["kind"])
        if schema is None:
            return [f"kind {doc['kind']}: no schema for this ESO kind"]
        return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc}"]
    return []


def _k8s_version(cfg) -> str:
    return f"{cfg.kubernetes_version}.0"


@pytest.mark.parametrize("variant", sorted(VARIANTS) + ["dev-hf-ingress"])
def test_every_manifest_is_valid(synthesized, variant):
    cfg, files = synthesized[variant]
    manifests = docs(files)
    assert len(manifests) >= 14
    problems = {f"{d['kind']}/{d['metadata']['name']}": validation_errors(d, _k8s_version(cfg)) for d in manifests}
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_kind_is_covered_by_a_validator(synthesized):
    kinds = {(d["apiVersion"], d["kind"]) for _, files in synthesized.values() for d in docs(files)}
    assert ("ray.io/v1", "RayService") in kinds
    assert ("external-secrets.io/v1", "ExternalSecret") in kinds
    assert {k for _, k in kinds} >= {"Namespace", "Deployment", "Service", "PersistentVolumeClaim", "NetworkPolicy"}


# --- negative cases: the validators reject what the API server would -------------------------------

def _rayservice(synthesized) -> dict:
    return copy.deepcopy(find(synthesized["env-dev"][1], "RayService"))


def test_crd_rejects_wrong_type(synthesized):
    rs = _rayservice(synthesized)
    rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplicas"] = "one"
    assert any("minReplicas" in e for e in validate_custom_resource(rs))


def test_crd_rejects_non_string_ray_start_param(synthesized):
    rs = _rayservice(synthesized)
    rs["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    assert any("rayStartParams" in e for e in validate_custom_resource(rs))


def test_crd_rejects_unknown_field(synthesized):
    rs = _rayservice(synthesized)
    rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    assert validate_custom_resource(rs)


def test_crd_cel_rule_bites(synthesized):
    rs = _rayservice(synthesized)
    rs["spec"]["rayClusterConfig"]["managedBy"] = "someone-else"
    errors = validate_custom_resource(rs)
    assert any("managedBy" in e for e in errors), errors


def test_kubernetes_validate_strict_rejects_unknown_field(synthesized):
    cfg, files = synthesized["env-dev"]
    dep = copy.deepcopy(find(files, "Deployment", "open-webui"))
    assert validation_errors(dep, _k8s_version(cfg)) == []
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicies"] = "IfNotPresent"
    assert validation_errors(dep, _k8s_version(cfg))


def test_kubernetes_validate_rejects_bad_port(synthesized):
    cfg, files = synthesized["env-dev"]
    svc = copy.deepcopy(find(files, "Service", "open-webui"))
    svc["spec"]["ports"][0]["port"] = "eighty"
    assert validation_errors(svc, _k8s_version(cfg))


def test_eso_schema_rejects_missing_store(synthesized):
    cfg, files = synthesized["env-dev"]
    es = copy.deepcopy(next(d for d in docs(files) if d["kind"] == "ExternalSecret"))
    assert validation_errors(es, _k8s_version(cfg)) == []
    del es["spec"]["secretStoreRef"]
    assert validation_errors(es, _k8s_version(cfg))

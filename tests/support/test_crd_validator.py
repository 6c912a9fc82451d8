"""The CRD validator accepts valid custom resources and rejects broken ones (schema and CEL rules)."""

import copy

import pytest

from tests.support import crd_validator
from tests.support.crd_validator import CRDValidationError, assert_valid, validate_custom_resource


def _nodepool() -> dict:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "inferentia-inf2"},
        "spec": {
            "template": {
                "metadata": {"labels": {"example.com/role": "inference"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "neuron"},
                    "requirements": [
                        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["inf2"]},
                        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": ["3"]},
                    ],
                    "taints": [{"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}],
                    "expireAfter": "720h",
                },
            },
            "limits": {"cpu": "1000", "aws.amazon.com/neuron": 64},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "300s"},
        },
    }


def _nodeclass() -> dict:
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "neuron"},
        "spec": {
            "role": "KarpenterNode-test",
            "amiSelectorTerms": [{"alias": "al2023@v20250101"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "test"}}],
            "blockDeviceMappings": [
                {"deviceName": "/dev/xvda", "rootVolume": True,
                 "ebs": {"volumeSize": "500Gi", "volumeType": "gp3", "encrypted": True}}
            ],
        },
    }


def _rayservice() -> dict:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "demo", "namespace": "vllm"},
        "spec": {"rayClusterConfig": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
            "containers": [{"name": "head", "image": "rayproject/ray:2", "resources": {"limits": {"cpu": 2}}}]
        }}}}},
    }


@pytest.mark.parametrize("factory", [_nodepool, _nodeclass, _rayservice])
def test_accepts_valid_objects(factory):
    obj = factory()
    assert validate_custom_resource(obj) == []
    assert_valid(obj)


def test_does_not_modify_the_input():
    obj = _nodepool()
    before = copy.deepcopy(obj)
    validate_custom_resource(obj)
    assert obj == before


# --- schema rejections ------------------------------------------------------------------------------

def _mutate(factory, change):
    obj = factory()
    change(obj)
    return validate_custom_resource(obj)


def test_rejects_unknown_field():
    errors = _mutate(_nodepool, lambda o: o["spec"].update(replicas_typo=1))
    assert any("spec" in e and "replicas_typo" in e for e in errors), errors


def test_rejects_bad_enum():
    errors = _mutate(_nodepool, lambda o: o["spec"]["template"]["spec"]["taints"][0].update(effect="Never"))
    assert any("taints[0].effect" in e and "Never" in e for e in errors), errors


def test_rejects_missing_required_field():
    errors = _mutate(_nodepool, lambda o: o["spec"]["template"]["spec"].pop("nodeClassRef"))
    assert any("nodeClassRef" in e and "required" in e for e in errors), errors


def test_rejects_pattern_mismatch():
    # volumeSize must be a quantity like 500Gi, and at most 64Ti
    errors = _mutate(_nodeclass, lambda o: o["spec"]["blockDeviceMappings"][0]["ebs"].update(volumeSize="lots"))
    assert any("volumeSize" in e for e in errors), errors


def test_rejects_wrong_type_and_checks_int_or_string():
    errors = _mutate(_nodepool, lambda o: o["spec"]["disruption"].update(consolidateAfter=30))
    assert any("consolidateAfter" in e for e in errors), errors
    # limits are int-or-string quantities: both forms are fine, a list is not
    assert _mutate(_nodepool, lambda o: o["spec"]["limits"].update(memory="1000Gi")) == []
    errors = _mutate(_nodepool, lambda o: o["spec"]["limits"].update(memory=["1"]))
    assert any("limits" in e for e in errors), errors


def test_rejects_bad_metadata_name():
    errors = _mutate(_nodepool, lambda o: o["metadata"].update(name="Inferentia_INF2"))
    assert any(e.startswith("metadata.name") for e in errors), errors


def test_rejects_int32_overflow():
    rs = _rayservice()
    rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 2**40
    assert validate_custom_resource(rs) == []  # int64 field: fine
    rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 2**40}
    ]
    errors = validate_custom_resource(rs)
    assert any("containerPort" in e and "int32" in e for e in errors), errors


def test_rejects_duplicate_list_map_keys():
    rs = _rayservice()
    rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"].append(
        {"name": "head", "image": "other"}
    )
    errors = validate_custom_resource(rs)
    assert any("containers[1]" in e and "Duplicate" in e for e in errors), errors


def test_unknown_kind_and_unserved_version():
    assert "no CRD" in validate_custom_resource({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {}})[0]
    errors = _mutate(_nodepool, lambda o: o.update(apiVersion="karpenter.sh/v1beta1"))
    assert "not served" in errors[0] and "['v1']" in errors[0]


def test_applies_schema_defaults_before_cel():
    # The CRD defaults disruption.budgets to [{nodes: 10%}]; a NodePool without it is valid.
    obj = _nodepool()
    del obj["spec"]["disruption"]
    assert validate_custom_resource(obj) == []


# --- CEL rejections ---------------------------------------------------------------------------------

def test_cel_gt_operator_needs_one_integer_value():
    errors = _mutate(
        _nodepool, lambda o: o["spec"]["template"]["spec"]["requirements"][1].update(values=["3", "4"])
    )
    assert errors == [
        "spec.template.spec.requirements: Invalid value: requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' "
        "must have a single positive integer value"
    ]


def test_cel_restricted_label_domain_uses_find_and_endswith():
    errors = _mutate(
        _nodepool, lambda o: o["spec"]["template"]["spec"]["requirements"][0].update(key="karpenter.sh/custom")
    )
    assert errors and "restricted" in errors[0], errors


def test_cel_restricted_template_label():
    errors = _mutate(_nodepool, lambda o: o["spec"]["template"]["metadata"]["labels"].update(
        {"karpenter.sh/nodepool": "x"}))
    assert any("labels" in e for e in errors), errors


def test_cel_alias_exclusive_with_other_terms():
    errors = _mutate(_nodeclass, lambda o: o["spec"]["amiSelectorTerms"].append({"id": "ami-0123"}))
    assert any("mutually exclusive" in e for e in errors), errors


def test_cel_alias_family_uses_split():
    errors = _mutate(_nodeclass, lambda o: o["spec"]["amiSelectorTerms"][0].update(alias="ubuntu@v1"))
    assert any("alias" in e for e in errors), errors
    errors = _mutate(_nodeclass, lambda o: o["spec"]["amiSelectorTerms"][0].update(alias="windows2022@v1"))
    assert any("latest" in e for e in errors), errors


def test_cel_role_xor_instance_profile():
    errors = _mutate(_nodeclass, lambda o: o["spec"].update(instanceProfile="profile"))
    assert any("exactly one of ['role', 'instanceProfile']" in e for e in errors), errors


def test_cel_ami_family_must_match_alias():
    errors = _mutate(_nodeclass, lambda o: o["spec"].update(amiFamily="Bottlerocket"))
    assert any("AL2023" in e for e in errors), errors


def test_cel_rayservice_managed_by_enum():
    rs = _rayservice()
    rs["spec"]["rayClusterConfig"]["managedBy"] = "someone-else"
    errors = validate_custom_resource(rs)
    assert any("managedBy" in e for e in errors), errors


def test_transition_rules_run_on_update_only():
    rs = _rayservice()
    rs["spec"]["rayClusterConfig"]["managedBy"] = "ray.io/kuberay-operator"
    assert validate_custom_resource(rs) == []
    old = copy.deepcopy(rs)
    old["spec"]["rayClusterConfig"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    errors = validate_custom_resource(rs, old=old)
    assert any("immutable" in e for e in errors), errors


def test_unsupported_cel_function_is_an_error_not_a_skip(monkeypatch):
    schema = crd_validator._compiled(
        crd_validator._crd_index(str(crd_validator.crds_dir()))[("karpenter.sh", "NodePool")], "v1"
    ).schema
    spec = schema["properties"]["spec"]
    monkeypatch.setitem(spec, "x-kubernetes-validations", [{"rule": "true || self.quantityMagic()", "message": "m"}])
    errors = validate_custom_resource(_nodepool())
    assert any("quantityMagic" in e and "does not implement" in e for e in errors), errors


def test_assert_valid_names_the_object_and_errors():
    obj = _nodeclass()
    obj["spec"]["instanceProfile"] = "p"
    with pytest.raises(CRDValidationError, match=r"EC2NodeClass 'neuron' is not valid"):
        assert_valid(obj)


def test_missing_crd_dir_fails_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("CRDS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(CRDValidationError, match="CRDS_DIR"):
        validate_custom_resource(_nodepool())

"""The model store's bucket and the Ray workers' role on it, in the synthesized Inference template:
encrypted, private, TLS only, lifecycle rules, and a policy that writes artifacts/ only."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from config.model_store import ABORT_MULTIPART_DAYS, ARTIFACTS_EXPIRE_DAYS, ARTIFACTS_ROOT, WEIGHTS_ROOT  # noqa: E402
from config.names import RAY_WORKER_SERVICE_ACCOUNT, VLLM_NAMESPACE  # noqa: E402
from tests.stacks.test_inference_stack import stack  # noqa: E402,F401 - the synthesized Inference stack
from tests.support.synth import render  # noqa: E402


@pytest.fixture(scope="module")
def template(stack):
    """The Inference template test_inference_stack.py synthesizes (same fixture, no second recipe)."""
    return stack[1]


def _of_type(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _bucket(template):
    [(lid, bucket)] = _of_type(template, "AWS::S3::Bucket").items()
    return lid, bucket


def _listed(v):
    return v if isinstance(v, list) else [v]


def test_bucket_is_encrypted_private_and_cleaned_up(template):
    _, bucket = _bucket(template)
    props = bucket["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["DeletionPolicy"] == "Delete"
    assert _of_type(template, "Custom::S3AutoDeleteObjects"), "cdk destroy must empty the bucket"
    assert "-models-" in render(props["BucketName"])


def test_bucket_policy_denies_plain_http(template):
    lid, _ = _bucket(template)
    [policy] = [p for p in _of_type(template, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": lid}]
    denies = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Deny"]
    assert any(st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and st["Principal"] == {"AWS": "*"}
               and st["Action"] == "s3:*" for st in denies)


def test_lifecycle_rules(template):
    _, bucket = _bucket(template)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": ABORT_MULTIPART_DAYS}
    assert "Prefix" not in rules["AbortIncompleteUploads"]
    expire = rules["ExpireOldArtifacts"]
    assert (expire["Prefix"], expire["ExpirationInDays"], expire["Status"]) == (ARTIFACTS_ROOT, ARTIFACTS_EXPIRE_DAYS, "Enabled")
    assert not any(r.get("Prefix", "").startswith(WEIGHTS_ROOT) for r in rules.values()), "weights never expire"


def _worker_statements(template):
    [policy] = _of_type(template, "AWS::IAM::ManagedPolicy").values()
    return policy, [{**st, "Resource": [render(r) for r in _listed(st["Resource"])], "Action": _listed(st["Action"])}
                    for st in policy["Properties"]["PolicyDocument"]["Statement"]]


def test_worker_policy_writes_artifacts_only(template):
    lid, _ = _bucket(template)
    policy, statements = _worker_statements(template)
    arn = "${%s.Arn}" % lid
    puts = [r for st in statements if "s3:PutObject" in st["Action"] for r in st["Resource"]]
    assert puts == [f"{arn}/{ARTIFACTS_ROOT}*"]
    gets = sorted(r for st in statements if "s3:GetObject" in st["Action"] for r in st["Resource"])
    assert gets == sorted([f"{arn}/{ARTIFACTS_ROOT}*", f"{arn}/{WEIGHTS_ROOT}*"])
    assert not any(a in ("s3:*", "s3:DeleteObject") or a.endswith("*") for st in statements for a in st["Action"])
    assert all(st["Effect"] == "Allow" for st in statements)
    [(role,)] = [tuple(policy["Properties"]["Roles"])]
    assert role == {"Ref": next(k for k in _of_type(template, "AWS::IAM::Role") if k.startswith("RayWorkerRole"))}


def test_worker_list_is_limited_to_the_store_prefixes(template):
    lid, _ = _bucket(template)
    _, statements = _worker_statements(template)
    [listing] = [st for st in statements if "s3:ListBucket" in st["Action"]]
    assert listing["Resource"] == ["${%s.Arn}" % lid]
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    assert set(prefixes) == {WEIGHTS_ROOT, f"{WEIGHTS_ROOT}*", ARTIFACTS_ROOT, f"{ARTIFACTS_ROOT}*"}


def test_worker_role_is_bound_to_the_ray_worker_service_account(template):
    assocs = [a["Properties"] for a in _of_type(template, "AWS::EKS::PodIdentityAssociation").values()]
    [worker] = [a for a in assocs if a["ServiceAccount"] == RAY_WORKER_SERVICE_ACCOUNT]
    assert worker["Namespace"] == VLLM_NAMESPACE
    assert worker["RoleArn"]["Fn::GetAtt"][0].startswith("RayWorkerRole")
    role = template["Resources"][worker["RoleArn"]["Fn::GetAtt"][0]]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert "aws:RequestTag/eks-cluster-arn" in trust["Condition"]["StringEquals"]

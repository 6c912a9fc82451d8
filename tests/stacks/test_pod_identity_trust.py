"""Every role EKS Pod Identity may assume trusts it for one account and one cluster only:
aws:SourceAccount and the eks-cluster-arn session tag (platform_constructs/addons/pod_identity.py says
where AWS documents each, and why not aws:SourceArn)."""

from __future__ import annotations

import json

import pytest

from platform_constructs.addons.pod_identity import POD_IDENTITY_PRINCIPAL

def _pod_identity_trusts(synth):
    out = {}
    for stack, template in synth.templates.items():
        for lid, res in template["Resources"].items():
            if res["Type"] != "AWS::IAM::Role":
                continue
            for st in res["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                if st.get("Principal", {}).get("Service") == POD_IDENTITY_PRINCIPAL:
                    out[f"{stack}/{lid}"] = st
    return out


@pytest.mark.parametrize("fixture", ["synth_dev", "synth_prod"])
def test_pod_identity_roles_trust_one_account_and_one_cluster(request, fixture):
    trusts = _pod_identity_trusts(request.getfixturevalue(fixture))
    assert len(trusts) >= 5, sorted(trusts)
    for name, st in trusts.items():
        assert sorted(st["Action"]) == ["sts:AssumeRole", "sts:TagSession"], name
        assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, name
        cluster_arn = st["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"]
        assert "Arn" in json.dumps(cluster_arn), (name, cluster_arn)  # the cluster's Arn (GetAtt or import)
        # Only keys EKS Pod Identity is documented to send: a condition on another denies every AssumeRole.
        assert set(st["Condition"]) == {"StringEquals"}, (name, st["Condition"])


def test_the_karpenter_role_names_the_cluster_of_its_environment(synth_dev):
    trusts = _pod_identity_trusts(synth_dev)
    (karpenter,) = [st for name, st in trusts.items() if "KarpenterControllerRole" in name]
    assert "Llama3Inf2-dev-Cluster" in json.dumps(karpenter["Condition"]), "the dev cluster's ARN, imported"

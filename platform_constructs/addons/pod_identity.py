"""IAM roles for Kubernetes service accounts through EKS Pod Identity (no OIDC provider needed).

The trust policy lets the EKS Pod Identity service (pods.eks.amazonaws.com) assume the role with
session tags, and only on behalf of one cluster of this account:

- aws:SourceAccount = this account: the cross-service confused-deputy condition (IAM User Guide, "The
  confused deputy problem"), as in AWS's own Pod Identity samples (aws-samples sample-eks-nitro-sandbox
  ci-cd/docker-builds/iam/pod-identity-trust.json).
- aws:RequestTag/eks-cluster-arn = the cluster ARN: the session tag EKS Pod Identity sets on every
  AssumeRole (EKS User Guide, "Create IAM role with trust policy required by EKS Pod Identity", and
  "Enable or disable session tags"), the documented way to restrict a role to one cluster.

Not aws:SourceArn: the EKS User Guide ("Cross-service confused deputy prevention in Amazon EKS", 2025-08)
documents it for the cluster role only, and a condition on a key the service does not send denies
every AssumeRole, which would leave Karpenter, External Secrets and the agents without credentials.
An association in another cluster of the account (or another account) cannot use these roles.
"""

from __future__ import annotations

from aws_cdk import Stack, aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
CLUSTER_ARN_SESSION_TAG = "eks-cluster-arn"


def trust_conditions(stack: Stack, cluster: eks.ICluster) -> dict:
    """The conditions every Pod Identity role's trust statement carries, for `cluster`."""
    return {"StringEquals": {"aws:SourceAccount": stack.account,
                             f"aws:RequestTag/{CLUSTER_ARN_SESSION_TAG}": cluster.cluster_arn}}


def pod_identity_role(scope: Construct, id: str, *, description: str, cluster: eks.ICluster) -> iam.Role:
    """A role only the EKS Pod Identity agent can assume (sts:AssumeRole + sts:TagSession), for `cluster`."""
    conditions = trust_conditions(Stack.of(scope), cluster)
    return iam.Role(
        scope, id,
        assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL, conditions=conditions)),
        description=description,
    )

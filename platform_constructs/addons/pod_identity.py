"""IAM roles for Kubernetes service accounts through EKS Pod Identity (no OIDC provider needed)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_role(scope: Construct, id: str, *, description: str) -> iam.Role:
    """A role only the EKS Pod Identity agent can assume (sts:AssumeRole + sts:TagSession)."""
    return iam.Role(
        scope, id,
        assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL)),
        description=description,
    )

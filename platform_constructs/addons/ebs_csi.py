"""Amazon EBS CSI driver (EKS managed add-on) with its IAM via Pod Identity, and gp3 as default StorageClass."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

from config.names import GP3_STORAGE_CLASS
from platform_constructs.addons.managed_addon import ManagedAddOn, ManagedAddOnProps
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge


@dataclass(frozen=True, kw_only=True)
class EbsCsiProps(ManagedAddOnProps):
    addon_name: str = "aws-ebs-csi-driver"
    service_account: str | None = "ebs-csi-controller-sa"  # the controller's service account in kube-system
    storage_class: str = GP3_STORAGE_CLASS  # the default StorageClass it installs


def gp3_storage_class(name: str = GP3_STORAGE_CLASS) -> dict:
    """Encrypted gp3, bound where the pod lands (zonal EBS), expandable; the cluster default."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": name,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Delete",
    }


class EbsCsiAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.Cluster, props: EbsCsiProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.role = pod_identity_role(self, "Role", description="EBS CSI controller (Pod Identity)", cluster=cluster)
        # The AWS-maintained policy is scoped by the ebs.csi.aws.com tags the driver sets; it tracks
        # new driver releases, which a hand-copied policy would not.
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEBSCSIDriverPolicy")
        )
        acknowledge(self.role, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy]":
                "AWS-maintained EBS CSI policy, condition-scoped to volumes/snapshots tagged by the driver; "
                "kept managed so it follows driver releases.",
        })
        self.addon = ManagedAddOn(self, "Addon", cluster=cluster, props=props, role=self.role)
        self.storage_class = cluster.add_manifest("Gp3StorageClass", gp3_storage_class(props.storage_class))

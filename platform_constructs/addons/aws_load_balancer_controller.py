"""AWS Load Balancer Controller (Helm, pinned): makes the ALB of the inference Ingress (k8s_charts/ingress.py).

IAM: a Pod Identity role with the controller's published policy for the pinned version, verbatim
(data/aws_load_balancer_controller_iam_policy_<version>.json, source in data/README.md). Most of its
statements are scoped by the elbv2.k8s.aws/cluster tag the controller puts on everything it creates,
which is also how the destroy-time cleanup (platform_constructs/cleanup) finds what is left.

The chart's own IngressClass is off: the inference charts define theirs with IngressClassParams that
pin the scheme and the TLS policy, so an Ingress cannot widen them by annotation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from aws_cdk import Duration, aws_ec2 as ec2, aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

from config.names import (
    AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE, AWS_LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT, CORE_NODE_ROLE, NODE_ROLE_LABEL,
)
from config.versions import (
    AWS_LOAD_BALANCER_CONTROLLER_CHART_REPO, AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION,
    AWS_LOAD_BALANCER_CONTROLLER_IMAGE_REPOSITORY, AWS_LOAD_BALANCER_CONTROLLER_VERSION,
)
from platform_constructs.addons.helm_addon import HelmAddOnProps, helm_chart
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge

POLICY_FILE = Path(__file__).parent / "data" / f"aws_load_balancer_controller_iam_policy_{AWS_LOAD_BALANCER_CONTROLLER_VERSION}.json"


def published_policy() -> dict:
    """The controller's IAM policy document for the pinned version."""
    return json.loads(POLICY_FILE.read_text())


@dataclass(frozen=True, kw_only=True)
class AwsLoadBalancerControllerProps(HelmAddOnProps):
    chart: str = "aws-load-balancer-controller"
    repository: str = AWS_LOAD_BALANCER_CONTROLLER_CHART_REPO
    version: str = AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION
    namespace: str = AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE
    release: str = "aws-load-balancer-controller"
    service_account: str = AWS_LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT
    image_repository: str = AWS_LOAD_BALANCER_CONTROLLER_IMAGE_REPOSITORY
    image_tag: str = AWS_LOAD_BALANCER_CONTROLLER_VERSION
    cluster_name: str
    region: str
    node_selector: Mapping[str, str] = field(default_factory=lambda: {NODE_ROLE_LABEL: CORE_NODE_ROLE})


def wildcard_findings(document: dict, reason: str) -> dict[str, str]:
    """{cdk-nag IAM5 finding id: reason} for every wildcard resource and action of `document`."""
    out = {}
    for statement in document["Statement"]:
        for kind in ("Resource", "Action"):
            values = statement.get(kind, [])
            for value in [values] if isinstance(values, str) else values:
                if "*" in value:
                    out[f"AwsSolutions-IAM5[{kind}::{value}]"] = reason
    return out


class AwsLoadBalancerControllerAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, vpc: ec2.IVpc,
                 props: AwsLoadBalancerControllerProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.role = pod_identity_role(self, "Role", cluster=cluster,
                                      description="AWS Load Balancer Controller: manage the cluster's ALBs")
        self.policy = iam.Policy(self, "IamPolicy", document=iam.PolicyDocument.from_json(published_policy()))
        self.policy.attach_to_role(self.role)
        acknowledge(self.policy, wildcard_findings(published_policy(), (
            "The AWS Load Balancer Controller's published policy for the pinned version, verbatim "
            "(docs/install/iam_policy.json): Describe/List calls without resource-level permissions, and "
            "create/modify calls on resources it names at run time, scoped by the elbv2.k8s.aws/cluster tag "
            "the controller sets on what it creates.")))
        self.pod_identity = eks.CfnPodIdentityAssociation(
            self, "PodIdentity", cluster_name=cluster.cluster_name, namespace=props.namespace,
            service_account=props.service_account, role_arn=self.role.role_arn,
        )
        self.values = props.merged_values({
            "clusterName": props.cluster_name,
            # Given, not discovered: the controller would otherwise ask IMDS, which the nodes' hop limit
            # of 1 keeps from pods.
            "region": props.region,
            "vpcId": vpc.vpc_id,
            "image": {"repository": props.image_repository, "tag": props.image_tag},
            "serviceAccount": {"create": True, "name": props.service_account},
            "nodeSelector": dict(props.node_selector),
            "createIngressClassResource": False,
            # Secrets stay unreadable cluster-wide (the chart's default): the one Secret it needs, Open
            # WebUI's OIDC client, is granted by a Role in that namespace (k8s_charts/webui_chart.py).
            "clusterSecretsPermissions": {"allowAllSecrets": False},
            "ingressClassParams": {"create": False},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        })
        self.chart = helm_chart(self, "Chart", cluster=cluster, props=props, values=self.values,
                                wait=True, timeout=Duration.minutes(10))
        # Credentials before the first reconcile (it creates AWS resources on its own).
        self.chart.node.add_dependency(self.pod_identity)

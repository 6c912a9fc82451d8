"""external-dns (Helm, pinned): Route 53 alias records for the ALB's host names (issue 13 #4).

Why a controller and not a CloudFormation record: the ALB is made by the AWS Load Balancer Controller
after the Ingress is applied, so its DNS name is unknown when the template deploys; external-dns reads it
from the Ingresses' status and writes an alias A record (it knows each region's ELB hosted zone id,
provider/aws/aws.go canonicalHostedZones) for every host of the inference IngressClass, in one zone.

Policy `sync`: a host removed from an Ingress, or an Ingress deleted (the inference stack's destroy, while
this add-on still runs), takes its records with it; the TXT registry (owner id = the cluster name) keeps
it from touching records it did not create.

IAM (docs/tutorials/aws.md at tag v0.21.0, narrowed): change and list records of the one hosted zone, and
only the configured names and their TXT companions (`<type>-<host>`, registry/mapper/mapper.go
ToTXTName); ListHostedZones has no resource-level permission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from aws_cdk import Duration, aws_eks_v2 as eks, aws_iam as iam
from constructs import Construct

from config.exposure import hosted_zone_arn, record_names
from config.names import ALB_INGRESS_CLASS, CORE_NODE_ROLE, EXTERNAL_DNS_NAMESPACE, NODE_ROLE_LABEL
from config.versions import (
    EXTERNAL_DNS_CHART_REPO, EXTERNAL_DNS_CHART_VERSION, EXTERNAL_DNS_IMAGE_REPOSITORY, EXTERNAL_DNS_VERSION,
)
from platform_constructs.addons.helm_addon import HelmAddOnProps, helm_chart
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge

# The record types external-dns may write for an ALB host: the alias A record and its TXT registry records.
RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")


@dataclass(frozen=True, kw_only=True)
class ExternalDnsProps(HelmAddOnProps):
    chart: str = "external-dns"
    repository: str = EXTERNAL_DNS_CHART_REPO
    version: str = EXTERNAL_DNS_CHART_VERSION
    namespace: str = EXTERNAL_DNS_NAMESPACE
    release: str = "external-dns"
    service_account: str = "external-dns"
    image_repository: str = EXTERNAL_DNS_IMAGE_REPOSITORY
    image_tag: str = EXTERNAL_DNS_VERSION
    hosted_zone_id: str
    zone_name: str
    hostnames: tuple[str, ...]  # the only names it may write (api_hostname, webui_oidc.hostname)
    owner_id: str  # TXT registry owner: the cluster name
    region: str
    ingress_class: str = ALB_INGRESS_CLASS
    node_selector: Mapping[str, str] = field(default_factory=lambda: {NODE_ROLE_LABEL: CORE_NODE_ROLE})


def zone_policy(zone_arn: str, hostnames: Sequence[str]) -> iam.PolicyDocument:
    return iam.PolicyDocument(statements=[
        iam.PolicyStatement(
            actions=["route53:ChangeResourceRecordSets"], resources=[zone_arn],
            conditions={"ForAllValues:StringEquals": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": record_names(hostnames),
                "route53:ChangeResourceRecordSetsRecordTypes": list(RECORD_TYPES),
            }}),
        iam.PolicyStatement(actions=["route53:ListResourceRecordSets", "route53:ListTagsForResources"],
                            resources=[zone_arn]),
        iam.PolicyStatement(actions=["route53:ListHostedZones"], resources=["*"]),
    ])


class ExternalDnsAddOn(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster: eks.ICluster, props: ExternalDnsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.role = pod_identity_role(self, "Role", cluster=cluster,
                                      description="external-dns: alias records of the inference ALB in one zone")
        self.policy = iam.Policy(self, "IamPolicy",
                                 document=zone_policy(hosted_zone_arn(props.hosted_zone_id), props.hostnames))
        self.policy.attach_to_role(self.role)
        acknowledge(self.policy, {"AwsSolutions-IAM5[Resource::*]": (
            "route53:ListHostedZones has no resource-level permission (Service Authorization Reference); "
            "external-dns lists zones to find the configured one, and may change records only in that zone.")})
        self.pod_identity = eks.CfnPodIdentityAssociation(
            self, "PodIdentity", cluster_name=cluster.cluster_name, namespace=props.namespace,
            service_account=props.service_account, role_arn=self.role.role_arn,
        )
        self.values = props.merged_values({
            "image": {"repository": props.image_repository, "tag": props.image_tag},
            "provider": {"name": "aws"},
            "serviceAccount": {"create": True, "name": props.service_account},
            # Given, not discovered: IMDS is out of the pods' reach (hop limit 1).
            "env": [{"name": "AWS_DEFAULT_REGION", "value": props.region}],
            "sources": ["ingress"],
            "policy": "sync",
            "registry": "txt",
            "txtOwnerId": props.owner_id,
            "domainFilters": [props.zone_name],
            "extraArgs": [f"--zone-id-filter={props.hosted_zone_id}", f"--ingress-class={props.ingress_class}"],
            "nodeSelector": dict(props.node_selector),
            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        })
        self.chart = helm_chart(self, "Chart", cluster=cluster, props=props, values=self.values,
                                create_namespace=True, wait=True, timeout=Duration.minutes(10))
        self.chart.node.add_dependency(self.pod_identity)

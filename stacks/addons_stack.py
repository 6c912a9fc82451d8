"""AddonsStack: in-cluster platform software -- Karpenter (with its NodePools), Neuron, KubeRay, the
AWS Load Balancer Controller, and external-dns when a DNS zone is configured.

Separate from ClusterStack so a chart upgrade never touches the control plane's stack. Each add-on's
props are filled here from the environment's config; chart pins are the props' defaults.
"""

from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from config.environments import EnvironmentConfig
from config.exposure import record_names
from platform_constructs.addons.aws_load_balancer_controller import (
    AwsLoadBalancerControllerAddOn, AwsLoadBalancerControllerProps,
)
from platform_constructs.addons.external_dns import ExternalDnsAddOn, ExternalDnsProps
from platform_constructs.addons.karpenter import KarpenterAddOn, KarpenterProps
from platform_constructs.addons.kuberay import KubeRayAddOn, KubeRayProps
from platform_constructs.addons.neuron import NeuronAddOn, NeuronProps
from platform_constructs.cleanup import ClusterCleanup
from platform_constructs.observability.retention import retention_for
from stacks.cluster_stack import ClusterStack


class AddonsStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, cfg: EnvironmentConfig, cluster: ClusterStack, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.add_stack_dependency(cluster)  # managed add-ons (CNI, Pod Identity agent) first
        core = cluster.core_node_selector
        self.karpenter = KarpenterAddOn(self, "Karpenter", cluster=cluster.cluster, props=KarpenterProps(
            cluster_name=cfg.cluster_name, environment=cfg.name, worker_shape=cfg.worker_shape, node_selector=core,
        ))
        self.neuron = NeuronAddOn(self, "Neuron", cluster=cluster.cluster, props=NeuronProps(
            node_selector=core, kubernetes_version=cfg.kubernetes_version,
        ))
        self.load_balancer_controller = AwsLoadBalancerControllerAddOn(
            self, "AwsLoadBalancerController", cluster=cluster.cluster, vpc=cluster.cluster.vpc,
            props=AwsLoadBalancerControllerProps(cluster_name=cfg.cluster_name, region=cfg.region, node_selector=core))
        self.external_dns = None
        if cfg.dns_hosted_zone_id:
            self.external_dns = ExternalDnsAddOn(self, "ExternalDns", cluster=cluster.cluster, props=ExternalDnsProps(
                hosted_zone_id=cfg.dns_hosted_zone_id, zone_name=cfg.dns_zone_name, hostnames=cfg.alb_hostnames,
                owner_id=cfg.cluster_name, region=cfg.region, node_selector=core))
        self.kuberay = KubeRayAddOn(self, "KubeRay", cluster=cluster.cluster, props=KubeRayProps(node_selector=core))
        # Destroy-time cleanup (issue 6): deleted -- i.e. run -- after the NodePools (Karpenter drains its
        # nodes) and before Karpenter, the cluster and the VPC.
        self.cleanup = ClusterCleanup(self, "ClusterCleanup", cluster_name=cfg.cluster_name, vpc=cluster.cluster.vpc,
                                      depends_on=[self.karpenter.chart, self.load_balancer_controller.chart,
                                                  cluster.cluster],
                                      log_retention=retention_for(cfg.log_retention_days),
                                      # external-dns's records, when it writes any (its registry marks them).
                                      hosted_zone_id=cfg.dns_hosted_zone_id,
                                      dns_record_names=record_names(cfg.alb_hostnames))
        self.karpenter.pools_manifest.node.add_dependency(self.cleanup.resource)

"""The deployable stacks, and `build_environment`: every stack of one environment, in deploy order.

Used by app.py and by the pipeline's Stages, so an environment is built the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aspects, Environment, Stack, Tags
from constructs import Construct

from config.environments import PIPELINE, EnvironmentConfig
from config.project import PROJECT_SLUG, PROJECT_TAG
from platform_constructs.observability.log_encryption import encrypt_log_groups
from platform_constructs.observability.retention import LambdaLogRetention
from stacks.addons_stack import AddonsStack
from stacks.cluster_stack import ClusterStack
from stacks.inference_stack import InferenceStack
from stacks.network_stack import NetworkStack
from stacks.observability_stack import ObservabilityStack


@dataclass
class EnvironmentStacks:
    network: NetworkStack
    cluster: ClusterStack
    addons: AddonsStack
    inference: InferenceStack
    observability: ObservabilityStack


def build_environment(scope: Construct, cfg: EnvironmentConfig) -> EnvironmentStacks:
    env = Environment(account=cfg.account, region=cfg.region)
    prefix = cfg.stack_prefix
    # Stack-level tags (CloudFormation tags the stack and propagates them) are given explicitly: with
    # @aws-cdk/core:explicitStackTags (cdk.json) Tags.of(stack) below tags only the template's resources.
    tags = {PROJECT_TAG: PROJECT_SLUG, "environment": cfg.name}
    network = NetworkStack(scope, f"{prefix}-Network", cfg=cfg, env=env, tags=tags,
                           description="VPC, subnets for nodes and pods, NAT, flow logs")
    cluster = ClusterStack(scope, f"{prefix}-Cluster", cfg=cfg, env=env, tags=tags, vpc=network.vpc,
                           node_subnets=network.pod_subnets,
                           description="EKS control plane, core node group, managed add-ons")
    addons = AddonsStack(scope, f"{prefix}-Addons", cfg=cfg, env=env, tags=tags, cluster=cluster,
                         description="Karpenter and its NodePools, Neuron device plugin and scheduler, KubeRay")
    inference = InferenceStack(scope, f"{prefix}-Inference", cfg=cfg, env=env, tags=tags, cluster=cluster.cluster,
                               description="Serving image, secrets sync (ESO), RayService and Open WebUI charts")
    inference.add_stack_dependency(addons)  # KubeRay's CRDs, the Neuron scheduler and NodePools first
    observability = ObservabilityStack(scope, f"{prefix}-Observability", cfg=cfg, env=env, tags=tags,
                                       cluster=cluster.cluster, vpc=network.vpc,
                                       smoke_invoker_account=PIPELINE.account,
                                       description="Serving metrics, dashboard, alarms (SNS), pipeline smoke test")
    observability.add_stack_dependency(inference)  # its ConfigMap and Role live in the `vllm` namespace
    stacks = EnvironmentStacks(network=network, cluster=cluster, addons=addons, inference=inference,
                               observability=observability)
    for stack in (s for s in vars(stacks).values() if isinstance(s, Stack)):
        for key, value in tags.items():
            Tags.of(stack).add(key, value)
        Aspects.of(stack).add(LambdaLogRetention(cfg.log_retention_days))
        encrypt_log_groups(stack)  # every log group, the ones CDK itself adds included
    return stacks

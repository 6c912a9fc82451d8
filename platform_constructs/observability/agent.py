"""ServingMetricsAgent: the CloudWatch agent (EMF receiver) + the serving metrics bridge, as one Deployment.

Own manifests (not the add-on's CloudWatchAgent resource), in the `amazon-cloudwatch` namespace the
add-on creates -- the only namespace the serving NetworkPolicy lets scrape the Ray pods' metrics port.
The agent writes to a log group this construct creates with a retention; IAM via EKS Pod Identity.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.names import CLOUDWATCH_NAMESPACE, RAY_METRICS_PORT, VLLM_NAMESPACE
from config.kubernetes import app_labels, container_security, pod_security
from config.project import log_group_name as project_log_group
from config.versions import CLOUDWATCH_AGENT_IMAGE, PYTHON_TOOLS_IMAGE
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.nag import acknowledge, wildcard_resource_findings
from platform_constructs.observability.metrics import SERVING_NAMESPACE

AGENT_NAMESPACE = CLOUDWATCH_NAMESPACE  # created by the amazon-cloudwatch-observability add-on
NAME = "serving-metrics"
RAY_POD_SELECTOR = "ray.io/is-ray-node=yes"  # KubeRay labels every Ray pod with it
EMF_PORT = 25888
NOBODY_UID = 65534
BRIDGE_SOURCE = Path(__file__).with_name("bridge.py")


def log_group_name(cluster_name: str) -> str:
    return project_log_group(cluster_name, "serving-metrics")


def agent_config(region: str) -> dict:
    return {
        "agent": {"region": region, "debug": False},
        "logs": {"metrics_collected": {"emf": {}}, "force_flush_interval": 5},
    }


def manifests(*, cluster_name: str, region: str, log_group: str) -> list[dict]:
    labels = app_labels(NAME)
    meta = {"name": NAME, "namespace": AGENT_NAMESPACE, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        # Read-only pod discovery in the serving namespace only.
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": NAME, "namespace": VLLM_NAMESPACE, "labels": labels},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": NAME, "namespace": VLLM_NAMESPACE, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": AGENT_NAMESPACE}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {
            "cwagentconfig.json": json.dumps(agent_config(region), indent=2, sort_keys=True),
            "bridge.py": BRIDGE_SOURCE.read_text(),
        }},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
            "replicas": 1,  # one scraper: two would double every count
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": NAME,
                "securityContext": pod_security(),
                "containers": [
                    {"name": "cloudwatch-agent", "image": CLOUDWATCH_AGENT_IMAGE,
                     # RUN_WITH_IRSA: credentials from the pod's role (Pod Identity), not from IMDS, which a
                     # pod cannot reach at hop limit 1 (karpenter_pools.py IMDS_HOP_LIMIT); the switch AWS
                     # prescribes where IMDS is out of reach (EKS User Guide, CloudWatch Observability on
                     # hybrid nodes; aws/amazon-cloudwatch-agent translator RunWithIRSA).
                     "env": [{"name": "RUN_IN_CONTAINER", "value": "True"}, {"name": "RUN_WITH_IRSA", "value": "True"},
                             {"name": "AWS_REGION", "value": region}],
                     "ports": [{"name": "emf-tcp", "containerPort": EMF_PORT, "protocol": "TCP"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                     "securityContext": container_security(None),
                     "volumeMounts": [{"name": "config", "mountPath": "/etc/cwagentconfig/cwagentconfig.json",
                                       "subPath": "cwagentconfig.json", "readOnly": True}]},
                    {"name": "bridge", "image": PYTHON_TOOLS_IMAGE,
                     "command": ["python", "-u", "/bridge/bridge.py"],
                     "env": [
                         {"name": "POD_NAMESPACE", "value": VLLM_NAMESPACE},
                         {"name": "POD_SELECTOR", "value": RAY_POD_SELECTOR},
                         {"name": "METRICS_PORT", "value": str(RAY_METRICS_PORT)},
                         {"name": "CW_NAMESPACE", "value": SERVING_NAMESPACE},
                         {"name": "CLUSTER_NAME", "value": cluster_name},
                         {"name": "LOG_GROUP", "value": log_group},
                         {"name": "EMF_PORT", "value": str(EMF_PORT)},
                         {"name": "INTERVAL_SECONDS", "value": "60"},
                     ],
                     "resources": {"requests": {"cpu": "20m", "memory": "48Mi"}, "limits": {"memory": "128Mi"}},
                     # nobody:nogroup; the bridge writes nothing to disk.
                     "securityContext": container_security(NOBODY_UID, read_only_root=True),
                     "volumeMounts": [{"name": "config", "mountPath": "/bridge/bridge.py", "subPath": "bridge.py",
                                       "readOnly": True}]},
                ],
                "volumes": [{"name": "config", "configMap": {"name": NAME}}],
            }},
        }},
    ]


class ServingMetricsAgent(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cluster: eks.ICluster, cluster_name: str,
                 retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(self, "LogGroup", log_group_name=log_group_name(cluster_name),
                                       retention=retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = pod_identity_role(self, "Role", description="Serving metrics agent: EMF to CloudWatch Logs",
                                      cluster=cluster)
        streams = stack.format_arn(service="logs", resource="log-group",
                                   resource_name=f"{log_group_name(cluster_name)}:log-stream:*",
                                   arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.role.add_to_policy(iam.PolicyStatement(
            sid="WriteServingMetricsLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[self.log_group.log_group_arn, streams],
        ))
        acknowledge(self.role, wildcard_resource_findings(
            self, [streams], "The agent names its log streams per pod at run time, inside this one log group."))
        self.pod_identity = eks.CfnPodIdentityAssociation(
            self, "PodIdentity", cluster_name=cluster.cluster_name, namespace=AGENT_NAMESPACE,
            service_account=NAME, role_arn=self.role.role_arn,
        )
        self.manifest = eks.KubernetesManifest(
            self, "Manifest", cluster=cluster, overwrite=True,
            manifest=manifests(cluster_name=cluster_name, region=stack.region, log_group=log_group_name(cluster_name)),
        )
        self.manifest.node.add_dependency(self.pod_identity, self.log_group)

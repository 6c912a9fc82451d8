"""SmokeTest: a Lambda in the environment's VPC that runs runtime/check.py as an in-cluster Job.

The pipeline's post-deployment step (runtime/pipeline_step.py, started by runtime/invoke.sh) invokes
it by name (function_name_for(stack_prefix)): first in status mode, as long as the cold-start budget
allows, until the RayService is Ready; then in check mode (runtime/runner.py). The function reaches
the cluster's private API endpoint from the VPC (it sits in the EKS cluster security group). Its
access entry names a Kubernetes group and carries no EKS access policy; a Role in the serving namespace
bound to that group allows exactly the calls runtime/runner.py makes (RBAC_RULES): get the RayService
(EKS access policies such as AmazonEKSEditPolicy do not cover custom resources), create and get its
Job, list pods and read their logs. Nothing else: no Secrets (the kubelet, not the function, reads
the API key into the Job), no exec, no deletes (the Job's ttlSecondsAfterFinished removes it). The
Job calls the serve Service with the API key from the synced Secret. The Lambda fails -- and with it the pipeline stage -- when
/v1/models or the chat answer is wrong.

The runtime this construct ships sits beside it in runtime/: check.py (the ConfigMap the Job runs),
runner.py (the Lambda; its code asset holds runner.py and check.py), pipeline_step.py + invoke.sh (the
CodePipeline CodeBuild step, run from the source checkout). The construct takes plain values; the
stack fills them from the environment's config.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.kubernetes import name_label
from config.cold_start import API_WAIT_SECONDS
from config.names import RAYSERVICE_NAME, SERVE_URL_IN_CLUSTER, SMOKE_TEST_NAME, VLLM_NAMESPACE
from config.project import SMOKE_TEST_GROUP
from config.secrets import API_KEY_SECRET, API_KEY_SECRET_KEY
from config.versions import PYTHON_TOOLS_IMAGE
from platform_constructs.nag import acknowledge

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
# Also the app.kubernetes.io/name of its objects; runtime/runner.py (which cannot import config/) labels
# the Job's pods with the same literal, and the cluster box checks that the serve-port policy admits them.
CONFIGMAP = SMOKE_TEST_NAME
# The Kubernetes group the function's access entry names and the Role below is bound to (EKS forbids
# "system:" groups in access entries; this one means nothing outside the binding).
KUBERNETES_GROUP = SMOKE_TEST_GROUP
RBAC_NAME = SMOKE_TEST_NAME
# Exactly the calls runtime/runner.py makes, in the serving namespace only (tests/platform_constructs/
# test_smoke_wait.py drives both modes through a fake API server enforcing these rules and checks that
# every rule is used): GET rayservices/<name> (status), POST jobs + GET jobs/<name> (check), GET pods
# ?labelSelector (a list, both modes), GET pods/<name>/log.
RBAC_RULES = [
    {"apiGroups": ["ray.io"], "resources": ["rayservices"], "verbs": ["get"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]
# One check-mode run: the Lambda's 15 minutes less start-up and the log read.
JOB_TIMEOUT_SECONDS = 14 * 60
# Lambda code: runtime/ less the package marker and the pipeline step (which runs in CodeBuild): runner.py,
# and check.py beside it (the Job gets check.py through the ConfigMap).
ASSET_EXCLUDE = ["__pycache__", "*.pyc", "__init__.py", "pipeline_step.py", "invoke.sh"]
LAMBDA_MANAGED_POLICIES = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")


def function_name_for(stack_prefix: str) -> str:
    """The function's name in an environment (the pipeline invokes it by this name)."""
    return f"{stack_prefix}-smoke-test"


def rbac_manifests() -> list[dict]:
    """Role + RoleBinding granting the smoke function's group what it calls, in the serving namespace."""
    labels = name_label(CONFIGMAP)
    meta = {"name": RBAC_NAME, "namespace": VLLM_NAMESPACE, "labels": labels}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": RBAC_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RBAC_NAME},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": KUBERNETES_GROUP}]},
    ]


class SmokeTest(Construct):
    """env_name: the environment (in the description); model_id: the model /v1/models must list;
    function_name: function_name_for(the stack prefix); invoker_account: the pipeline's account, allowed to
    invoke the function."""

    def __init__(self, scope: Construct, construct_id: str, *, function_name: str, env_name: str, model_id: str,
                 cluster: eks.Cluster, vpc: ec2.IVpc, retention: logs.RetentionDays,
                 invoker_account: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.script = eks.KubernetesManifest(self, "Script", cluster=cluster, overwrite=True, manifest=[{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": VLLM_NAMESPACE,
                         "labels": name_label(CONFIGMAP)},
            "data": {"check.py": (RUNTIME_DIR / "check.py").read_text()},
        }])
        self.rbac = eks.KubernetesManifest(self, "Rbac", cluster=cluster, overwrite=True, manifest=rbac_manifests())
        log_group = logs.LogGroup(self, "Logs", retention=retention, removal_policy=RemovalPolicy.DESTROY)
        self.function = lambda_.Function(
            self, "Function",
            function_name=function_name,
            description=f"Smoke test of the {env_name} endpoint: /v1/models and one chat completion, in-cluster",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="runner.handler",
            code=lambda_.Code.from_asset(str(RUNTIME_DIR), exclude=ASSET_EXCLUDE),
            timeout=Duration.minutes(15),
            memory_size=256,
            log_group=log_group,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[cluster.cluster_security_group],  # EKS lets its own group reach the API endpoint
            environment={
                "CLUSTER_NAME": cluster.cluster_name,
                "CLUSTER_ENDPOINT": cluster.cluster_endpoint,
                "CLUSTER_CA": cluster.cluster_certificate_authority_data,
                "NAMESPACE": VLLM_NAMESPACE,
                "RAYSERVICE": RAYSERVICE_NAME,
                "API_WAIT_SECONDS": str(API_WAIT_SECONDS),
                "CONFIGMAP": CONFIGMAP,
                "IMAGE": PYTHON_TOOLS_IMAGE,
                "BASE_URL": SERVE_URL_IN_CLUSTER,
                "MODEL": model_id,
                "API_KEY_SECRET": API_KEY_SECRET,
                "API_KEY_SECRET_KEY": API_KEY_SECRET_KEY,
                "TIMEOUT_SECONDS": str(JOB_TIMEOUT_SECONDS),
            },
        )
        # The L2 AccessEntry cannot name Kubernetes groups (aws-cdk-lib 2.275: access_policies, cluster,
        # principal, name, type only): the L1 resource can. No access policy: RBAC_RULES is all it gets.
        self.access = eks.CfnAccessEntry(
            self, "Access", cluster_name=cluster.cluster_name, principal_arn=self.function.role.role_arn,
            type="STANDARD", kubernetes_groups=[KUBERNETES_GROUP],
        )
        if invoker_account:
            self.function.add_permission("PipelineInvoke", principal=iam.AccountPrincipal(invoker_account),
                                         action="lambda:InvokeFunction")
        acknowledge(self.function, {
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{p}]":
                f"{p}: the standard AWS policy for a Lambda that logs and runs in a VPC."
            for p in LAMBDA_MANAGED_POLICIES
        })

"""Log encryption: every log group of a stack encrypted with a customer managed KMS key of that stack.

CloudWatch Logs always encrypts at rest with a service key; a key of our own adds what that cannot:
reading the logs needs kms:Decrypt on it as well as logs:Get*/FilterLogEvents, so log access is a
grant on one key per stack (the account root administers it, as with every CDK key), and deleting
the key makes what was written unreadable. Flow logs (who talked to whom), the Lambdas' output and
the serving metrics carry nothing secret, but they describe the deployment and its traffic.

One key per stack, not one per environment: no cross-stack export to block a stack's update or
deletion. CDK's own functions (custom-resource providers) get their log groups from
LambdaLogRetention, an aspect too; this one visits those after they are created (aspects stabilize).

Key policy as in "Encrypt log data in CloudWatch Logs using AWS KMS" (AWS CloudWatch Logs User
Guide, encrypt-log-data-kms.html, step 2): the regional logs service principal, limited by the
encryption context to this account's and region's log groups.
"""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, Aspects, CfnResource, Duration, IAspect, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import IConstruct

KEY_ID = "LogsKey"
LOG_GROUP = "AWS::Logs::LogGroup"


def encrypt_log_groups(stack: Stack) -> kms.Key:
    """Encrypt every log group of `stack` with its log key; returns the key (created on the first call)."""
    existing = stack.node.try_find_child(KEY_ID)
    if existing is not None:
        return existing  # type: ignore[return-value]
    key = kms.Key(
        stack, KEY_ID,
        description=f"{stack.stack_name}: CloudWatch Logs encryption",
        enable_key_rotation=True,
        # The log groups are destroyed with the stack; the key follows after the longest waiting period,
        # in which `aws kms cancel-key-deletion` still recovers logs someone exported or retained.
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(30),
    )
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="CloudWatchLogsOfThisAccountAndRegion",
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],  # in a key policy "*" is this key
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": stack.format_arn(
            service="logs", resource="log-group", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME)}},
    ))
    Aspects.of(stack).add(EncryptLogGroups(key))
    return key


@jsii.implements(IAspect)
class EncryptLogGroups:
    """Set KmsKeyId on every AWS::Logs::LogGroup in scope that has none (L1, L2 or CDK-internal)."""

    def __init__(self, key: kms.IKey) -> None:
        self.key = key

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or node.cfn_resource_type != LOG_GROUP:
            return
        if getattr(node, "kms_key_id", None):
            return
        # A Fn::GetAtt of the key: CloudFormation creates the key (and its policy) first.
        node.add_property_override("KmsKeyId", self.key.key_arn)

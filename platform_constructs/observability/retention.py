"""Log retention: an environment's log_retention_days (validated in config/environments.py) applied to
every log group. The stacks pass the days (cfg.log_retention_days); nothing here reads the config."""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, RemovalPolicy, aws_lambda as lambda_, aws_logs as logs
from constructs import Construct, IConstruct

from config.environments import LOG_RETENTION_DAYS

_NAMES = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
assert set(_NAMES) == set(LOG_RETENTION_DAYS)


def retention_for(days: int) -> logs.RetentionDays:
    """The RetentionDays member of `days` (one of LOG_RETENTION_DAYS)."""
    if days not in _NAMES:
        raise ValueError(f"log_retention_days: {days!r} is not a CloudWatch Logs retention; allowed: {sorted(_NAMES)}")
    return getattr(logs.RetentionDays, _NAMES[days])


@jsii.implements(IAspect)
class LambdaLogRetention:
    """Give every Lambda function in scope a log group with retention.

    Lambda creates `/aws/lambda/<name>` on first invocation with no expiry. CDK's own functions
    (kubectl provider, custom-resource providers, the default-security-group restrictor) offer no
    retention setting, so this aspect creates a log group with retention beside each function that has
    none and points the function's LoggingConfig at it.
    """

    def __init__(self, days: int) -> None:
        self.days = days

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or node.cfn_resource_type != "AWS::Lambda::Function":
            return
        if isinstance(node, lambda_.CfnFunction):
            config = node.logging_config
            if config is not None and getattr(config, "log_group", None):
                return
        group = logs.CfnLogGroup(node.node.scope, f"{node.node.id}LogGroup", retention_in_days=self.days)
        group.apply_removal_policy(RemovalPolicy.DESTROY)
        node.add_property_override("LoggingConfig.LogGroup", group.ref)


def service_log_groups(scope: Construct, names: dict[str, str], retention: logs.RetentionDays) -> list[logs.LogGroup]:
    """Log groups that AWS services (EKS, Container Insights) would otherwise create without expiry.

    Created before the service writes to them, so the service finds them with our retention.
    """
    return [
        logs.LogGroup(scope, id, log_group_name=name, retention=retention, removal_policy=RemovalPolicy.DESTROY)
        for id, name in names.items()
    ]

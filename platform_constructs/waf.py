"""The AWS WAF web ACL of an internet-facing ALB (issue 13): a per-source-IP rate-based rule, plus AWS's
common and known-bad-inputs managed rule groups, default allow (the API key is the authentication).

Associated through the IngressClassParams' wafv2AclArn (k8s_charts/ingress.py), not a
CfnWebACLAssociation: the ALB is made by the AWS Load Balancer Controller after this stack deploys, so
its ARN is not known to CloudFormation; the controller associates the ACL when it creates the ALB and
re-associates it if someone removes it.
"""

from __future__ import annotations

from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True)


def _managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name, priority=priority, override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
            vendor_name="AWS", name=name)),
        visibility_config=_visibility(name))


class ApiWebAcl(Construct):
    def __init__(self, scope: Construct, id: str, *, name: str, requests_per_5min: int) -> None:
        super().__init__(scope, id)
        rate_rule = wafv2.CfnWebACL.RuleProperty(
            name="rate-per-ip", priority=0, action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=requests_per_5min, aggregate_key_type="IP", evaluation_window_sec=300)),
            visibility_config=_visibility("rate-per-ip"))
        self.web_acl = wafv2.CfnWebACL(
            self, "Resource", name=name, scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=[rate_rule, _managed("AWSManagedRulesCommonRuleSet", 1),
                   _managed("AWSManagedRulesKnownBadInputsRuleSet", 2)],
            visibility_config=_visibility(name))
        self.arn = self.web_acl.attr_arn

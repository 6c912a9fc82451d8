"""ObservabilityStack: serving metrics into CloudWatch, the environment's dashboard and alarms (SNS),
and the smoke-test function the pipeline calls after each deployment.

Deployed after the cluster (and the inference stack, whose namespace the smoke test and the metrics
bridge work in); deleted before them.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from config.environments import EnvironmentConfig
from platform_constructs.first_hour_outputs import FirstHourOutputs
from platform_constructs.observability.agent import ServingMetricsAgent
from platform_constructs.observability.dashboard import InferenceDashboard
from platform_constructs.observability.retention import retention_for
from platform_constructs.smoke_test import SmokeTest


class ObservabilityStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: EnvironmentConfig, cluster: eks.Cluster,
                 vpc: ec2.IVpc, smoke_invoker_account: str | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = retention_for(cfg)
        self.agent = ServingMetricsAgent(self, "ServingMetrics", cluster=cluster, cluster_name=cfg.cluster_name,
                                         retention=retention)
        self.dashboard = InferenceDashboard(self, "Inference", cfg=cfg)
        self.smoke = SmokeTest(self, "SmokeTest", cfg=cfg, cluster=cluster, vpc=vpc, retention=retention,
                               invoker_account=smoke_invoker_account)
        CfnOutput(self, "AlarmTopicArn", value=self.dashboard.topic.topic_arn,
                  description="Subscribe on-call to this SNS topic (alarm_email in config does it for one address)")
        # The operator's first-hour commands, printed at the end of `cdk deploy` (same text as `make first-hour`).
        FirstHourOutputs(self, "FirstHour", cfg=cfg, cluster_name=cluster.cluster_name,
                         dashboard_name=self.dashboard.dashboard.dashboard_name)
        CfnOutput(self, "SmokeTestFunction", value=self.smoke.function.function_name,
                  description="aws lambda invoke --function-name <this> out.json  # re-runs the smoke test")

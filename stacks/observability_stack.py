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
from config.model_store import bucket_name
from config.names import CLOUDWATCH_DASHBOARD_SUFFIX
from platform_constructs.first_hour_outputs import FirstHourOutputs
from platform_constructs.observability.agent import ServingMetricsAgent
from platform_constructs.observability.dashboard import InferenceDashboard
from platform_constructs.observability.log_encryption import encrypt_log_groups
from platform_constructs.observability.retention import retention_for
from platform_constructs.smoke_test import SmokeTest
from platform_constructs.smoke_test import function_name_for as smoke_function_name


class ObservabilityStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: EnvironmentConfig, cluster: eks.Cluster,
                 vpc: ec2.IVpc, smoke_invoker_account: str | None = None, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = retention_for(cfg.log_retention_days)
        # Every log group here (serving metrics, the smoke test's) with the stack's log key.
        self.logs_key = encrypt_log_groups(self)
        self.agent = ServingMetricsAgent(self, "ServingMetrics", cluster=cluster, cluster_name=cfg.cluster_name,
                                         retention=retention)
        self.dashboard = InferenceDashboard(
            self, "Inference", env_name=cfg.name, cluster_name=cfg.cluster_name, region=cfg.region,
            dashboard_name=f"{cfg.stack_prefix}{CLOUDWATCH_DASHBOARD_SUFFIX}",
            ttft_p95_alarm_ms=cfg.ttft_p95_alarm_ms, alarm_email=cfg.alarm_email,
        )
        self.smoke = SmokeTest(self, "SmokeTest", function_name=smoke_function_name(cfg.stack_prefix),
                               env_name=cfg.name, model_id=cfg.model_id, cluster=cluster, vpc=vpc,
                               retention=retention, invoker_account=smoke_invoker_account)
        CfnOutput(self, "AlarmTopicArn", value=self.dashboard.topic.topic_arn,
                  description="Subscribe on-call to this SNS topic (alarm_email in config does it for one address)")
        # The operator's first-hour commands, printed at the end of `cdk deploy` (same text as `make first-hour`).
        FirstHourOutputs(self, "FirstHour", env_name=cfg.name, region=cfg.region, cluster_name=cluster.cluster_name,
                         dashboard_name=self.dashboard.dashboard.dashboard_name,
                         model_store_bucket=bucket_name(cfg.cluster_name, self.account, self.region),
                         model_id=cfg.model_id, model_revision=cfg.model_revision,
                         ready_timeout=cfg.worker_shape.cold_start.initializing_timeout, alb=cfg.alb_enabled,
                         api_hostname=cfg.api_hostname,
                         webui_url=cfg.webui_url)
        CfnOutput(self, "SmokeTestFunction", value=self.smoke.function.function_name,
                  description="aws lambda invoke --function-name <this> out.json  # re-runs the smoke test")

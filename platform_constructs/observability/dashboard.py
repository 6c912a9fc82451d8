"""InferenceDashboard: one CloudWatch dashboard per environment, the alarms and their SNS topic.

Takes plain values (the stack fills them from the environment's config): names, region, the TTFT
alarm threshold and the optional alarm e-mail address.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from platform_constructs.observability import metrics as m
from config.first_hour import dashboard_name_for

WIDTH = 12
HEIGHT = 6


class InferenceDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, env_name: str, cluster_name: str, region: str,
                 dashboard_name: str, ttft_p95_alarm_ms: int, alarm_email: str | None = None) -> None:
        super().__init__(scope, construct_id)
        name = cluster_name

        key = kms.Key(self, "TopicKey", enable_key_rotation=True,
                      description=f"Encrypts the {env_name} inference alarm topic")
        # CloudWatch must be able to publish to the encrypted topic.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"Llama3 inference alarms ({env_name})",
                               master_key=key, enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(alarm_email))

        ttft = lambda stat: m.serving(m.TTFT, name, stat, label=f"TTFT {stat}")  # noqa: E731
        itl = lambda stat: m.serving(m.INTER_TOKEN_LATENCY, name, stat, label=f"inter-token {stat}")  # noqa: E731
        self.alarms = {
            "NoHealthyServeReplica": cw.Alarm(
                self, "NoHealthyServeReplica",
                alarm_description=f"{env_name}: no healthy Ray Serve replica for 3 minutes (or no metrics at all)",
                metric=m.serving(m.HEALTHY_REPLICAS, name, "Minimum"),
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD, threshold=1,
                evaluation_periods=3, datapoints_to_alarm=3,
                treat_missing_data=cw.TreatMissingData.BREACHING,
            ),
            "TtftP95High": cw.Alarm(
                self, "TtftP95High",
                alarm_description=f"{env_name}: p95 time to first token above {ttft_p95_alarm_ms} ms",
                metric=m.serving(m.TTFT, name, "p95", period=Duration.minutes(5)),
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD, threshold=ttft_p95_alarm_ms,
                evaluation_periods=3, datapoints_to_alarm=2,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,  # no traffic is not slow traffic
            ),
            "NeuronRuntimeErrors": cw.Alarm(
                self, "NeuronRuntimeErrors",
                alarm_description=f"{env_name}: the Neuron runtime reported execution errors",
                metric=m.container_insights(m.NEURON_EXECUTION_ERRORS, name, "Sum", period=Duration.minutes(5)),
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD, threshold=0,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        }
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=dashboard_name,
                                      default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cw.TextWidget(markdown=f"# Llama-3 on Inferentia2 -- {env_name} (`{name}`, {region})\n"
                                   f"Serving metrics: `{m.SERVING_NAMESPACE}`; Neuron and nodes: Container Insights.",
                          width=24, height=2),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Time to first token (ms)", left=[ttft("p50"), ttft("p95")], width=WIDTH, height=HEIGHT,
                           left_annotations=[cw.HorizontalAnnotation(value=ttft_p95_alarm_ms, label="p95 alarm")]),
            cw.GraphWidget(title="Inter-token latency (ms)", left=[itl("p50"), itl("p95")], width=WIDTH, height=HEIGHT),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Output tokens/s", left=[m.serving(m.OUTPUT_TOKENS_PER_SECOND, name, "Average",
                                                                    label="output tokens/s")],
                           width=WIDTH, height=HEIGHT),
            cw.GraphWidget(title="Requests running / waiting", left=[
                m.serving(m.REQUESTS_RUNNING, name, "Maximum", label="running"),
                m.serving(m.REQUESTS_WAITING, name, "Maximum", label="waiting"),
            ], width=WIDTH, height=HEIGHT),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Healthy serve replicas", left=[m.serving(m.HEALTHY_REPLICAS, name, "Minimum",
                                                                         label="healthy replicas")],
                           width=WIDTH, height=HEIGHT,
                           left_annotations=[cw.HorizontalAnnotation(value=1, label="alarm below")]),
            cw.GraphWidget(title="Nodes", left=[m.container_insights(m.NODE_COUNT, name, "Average", label="nodes")],
                           width=WIDTH, height=HEIGHT),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="NeuronCore utilization (%)", left=[
                m.container_insights(m.NEURONCORE_UTILIZATION, name, "Average", label="average"),
                m.container_insights(m.NEURONCORE_UTILIZATION, name, "Maximum", label="busiest"),
            ], width=WIDTH, height=HEIGHT),
            cw.GraphWidget(title="Neuron device memory used (bytes)", left=[
                m.container_insights(m.NEURON_DEVICE_MEMORY, name, "Maximum", label="device memory used"),
            ], width=WIDTH, height=HEIGHT),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3),
        )

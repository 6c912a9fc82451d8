"""Stack outputs with the operator's first-hour commands (update kubeconfig, RayService status,
port-forwards, client, benchmark, CloudWatch dashboard), so `cdk deploy` ends by printing them.

The text comes from tools.first_hour.first_hour_steps, the same function `make first-hour` prints.
"""

from __future__ import annotations

from aws_cdk import CfnOutput
from constructs import Construct

from config.environments import EnvironmentConfig
from tools.first_hour import Step, dashboard_name_for, first_hour_steps


class FirstHourOutputs(Construct):
    """One CfnOutput per step, named FirstHour<Step> (e.g. FirstHourUpdateKubeconfig).

    cluster_name / dashboard_name default to the configured names; pass the real resources'
    attributes (tokens) when the stack has them, so the outputs always match what was deployed.
    """

    def __init__(self, scope: Construct, construct_id: str, *, cfg: EnvironmentConfig,
                 cluster_name: str | None = None, dashboard_name: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.steps: list[Step] = first_hour_steps(
            env_name=cfg.name,
            region=cfg.region,
            cluster_name=cluster_name or cfg.cluster_name,
            dashboard_name=dashboard_name or dashboard_name_for(cfg),
        )
        for number, step in enumerate(self.steps, start=1):
            # Output ids are stack-wide: set them on the stack so they read FirstHour<Step>, not a hash.
            output = CfnOutput(self, step.key, value=step.command, description=f"{number}. {step.title}")
            output.override_logical_id(f"FirstHour{step.key}")

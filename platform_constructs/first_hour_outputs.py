"""Stack outputs with the operator's first-hour commands (update kubeconfig, RayService status,
port-forwards, client, benchmark, CloudWatch dashboard), so `cdk deploy` ends by printing them.

The text comes from config.first_hour.first_hour_steps, the same function `make first-hour` prints.
Takes plain values (the stack fills them from the environment's config and its resources).
"""

from __future__ import annotations

from aws_cdk import CfnOutput
from constructs import Construct

from config.first_hour import Step, first_hour_steps


class FirstHourOutputs(Construct):
    """One CfnOutput per step, named FirstHour<Step> (e.g. FirstHourUpdateKubeconfig).

    Pass the real resources' attributes (tokens) for cluster_name / dashboard_name when the stack has
    them, so the outputs always match what was deployed.
    """

    def __init__(self, scope: Construct, construct_id: str, *, env_name: str, region: str, cluster_name: str,
                 dashboard_name: str, model_store_bucket: str, model_id: str, model_revision: str,
                 ready_timeout: str, alb: bool = False, api_hostname: str | None = None,
                 webui_url: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.steps: list[Step] = first_hour_steps(
            env_name=env_name, region=region, cluster_name=cluster_name, dashboard_name=dashboard_name,
            model_store_bucket=model_store_bucket, model_id=model_id, model_revision=model_revision,
            ready_timeout=ready_timeout, alb=alb, api_hostname=api_hostname, webui_url=webui_url,
        )
        for number, step in enumerate(self.steps, start=1):
            # Output ids are stack-wide: set them on the stack so they read FirstHour<Step>, not a hash.
            output = CfnOutput(self, step.key, value=step.command, description=f"{number}. {step.title}")
            output.override_logical_id(f"FirstHour{step.key}")

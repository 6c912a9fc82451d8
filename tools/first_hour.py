"""The operator's first hour after `cdk deploy`: copy-paste commands for one environment.

    python -m tools.first_hour --env dev      (or: make first-hour ENV=dev)

`first_hour_steps` is the one place the command text is written: the stack outputs
(platform_constructs/first_hour_outputs.py) and this CLI both print what it returns.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from config.environments import ConfigError, EnvironmentConfig, load_config
from config.names import (
    CLOUDWATCH_DASHBOARD_SUFFIX, LOCAL_SERVE_URL, RAY_DASHBOARD_PORT, RAY_HEAD_SERVICE_NAME, RAYSERVICE_NAME,
    SERVE_PORT, SERVE_SERVICE_NAME, VLLM_NAMESPACE, WEBUI_NAMESPACE, WEBUI_PORT, WEBUI_SERVICE_NAME,
    WEBUI_SERVICE_PORT, local_url,
)
from config.secrets import api_key_secret_name


@dataclass(frozen=True)
class Step:
    key: str  # CloudFormation output id: letters and digits only
    title: str
    command: str


def first_hour_steps(*, env_name: str, region: str, cluster_name: str, dashboard_name: str) -> list[Step]:
    """The commands, in the order an operator runs them. Arguments may be CDK tokens (stack outputs)."""
    ns = VLLM_NAMESPACE
    base_url = LOCAL_SERVE_URL
    return [
        Step("UpdateKubeconfig", "Point kubectl at the cluster",
             f"aws eks update-kubeconfig --region {region} --name {cluster_name}"),
        Step("RayServiceStatus", "Check the RayService (first start compiles the model for Neuron: allow ~30 min)",
             f"kubectl -n {ns} get rayservice {RAYSERVICE_NAME} && kubectl -n {ns} get pods -o wide && "
             f"kubectl -n {ns} wait rayservice/{RAYSERVICE_NAME} --for=condition=Ready --timeout=45m"),
        Step("ApiKey", "Export the endpoint's API key (kept in Secrets Manager, never in the stack)",
             f"export OPENAI_API_KEY=\"$(aws secretsmanager get-secret-value --region {region} "
             f"--secret-id {api_key_secret_name(cluster_name)} --query SecretString --output text)\""),
        Step("PortForwardServe", f"Port-forward the OpenAI-compatible endpoint to {base_url}",
             f"kubectl -n {ns} port-forward svc/{SERVE_SERVICE_NAME} {SERVE_PORT}:{SERVE_PORT}"),
        Step("PortForwardRayDashboard", f"Port-forward the Ray dashboard to {local_url(RAY_DASHBOARD_PORT)}",
             f"kubectl -n {ns} port-forward svc/{RAY_HEAD_SERVICE_NAME} {RAY_DASHBOARD_PORT}:{RAY_DASHBOARD_PORT}"),
        Step("PortForwardOpenWebUI", f"Port-forward Open WebUI to {local_url(WEBUI_PORT)}",
             f"kubectl -n {WEBUI_NAMESPACE} port-forward svc/{WEBUI_SERVICE_NAME} {WEBUI_PORT}:{WEBUI_SERVICE_PORT}"),
        Step("RunClient", "Run the example client (simple, sampling parameters, streaming)",
             f"OPENAI_BASE_URL={base_url} .venv/bin/python -m tools.client"),
        Step("RunBenchmark", "Run the LLMPerf-style benchmark with cost per 1M output tokens",
             f"make bench BENCH_ARGS=\"--base-url {base_url} --env {env_name}\""),
        Step("CloudWatchDashboard", "Open the CloudWatch dashboard",
             f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
             f"#dashboards/dashboard/{dashboard_name}"),
    ]


def dashboard_name_for(cfg: EnvironmentConfig) -> str:
    return f"{cfg.stack_prefix}{CLOUDWATCH_DASHBOARD_SUFFIX}"


def steps_for(cfg: EnvironmentConfig) -> list[Step]:
    return first_hour_steps(env_name=cfg.name, region=cfg.region, cluster_name=cfg.cluster_name,
                            dashboard_name=dashboard_name_for(cfg))


def render(cfg: EnvironmentConfig) -> str:
    lines = [f"# First hour with environment {cfg.name}: cluster {cfg.cluster_name} in {cfg.region}",
             "# (port-forwards keep running: give each its own terminal)", ""]
    for number, step in enumerate(steps_for(cfg), start=1):
        lines += [f"# {number}. {step.title}", step.command, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.first_hour", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="environment name from config/environments.py (default: dev)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config({"env": args.env} if args.env else {})
    except ConfigError as exc:
        parser.error(str(exc))
    print(render(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The operator's first hour after `cdk deploy`: the copy-paste commands for one environment.

`first_hour_steps` is the one place the command text is written: the stack outputs
(platform_constructs/first_hour_outputs.py, filled by stacks/observability_stack.py) and the
`make first-hour` CLI (tools/first_hour.py) both print what it returns. It lives in config/ because
both layers read it: the CLI sits above config, the CDK constructs too.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.environments import EnvironmentConfig
from config.model_store import CALLER_ACCOUNT, bucket_name
from config.names import (
    API_INGRESS_NAME, CLOUDWATCH_DASHBOARD_SUFFIX, LOCAL_SERVE_URL, RAY_DASHBOARD_PORT, RAY_HEAD_SERVICE_NAME, RAYSERVICE_NAME,
    SERVE_PORT, SERVE_SERVICE_NAME, VLLM_NAMESPACE, WEBUI_NAMESPACE, WEBUI_PORT, WEBUI_SERVICE_NAME,
    WEBUI_SERVICE_PORT, local_url,
)
from config.names import RAY_LOG_DIR, RAY_WORKER_CONTAINER, STARTUP_ERROR_MARKER
from config.secrets import APPS_KEY_NAME, KEY_CURRENT, api_key_secret_name, ray_auth_secret_name


# One field of a JSON secret value on stdin, with the Python every operator machine of this project has.
_JSON_FIELD = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"{field}\"])'"


def _secret_value(region: str, secret_id: str) -> str:
    return f"aws secretsmanager get-secret-value --region {region} --secret-id {secret_id} --query SecretString --output text"


@dataclass(frozen=True)
class Step:
    key: str  # CloudFormation output id: letters and digits only
    title: str
    command: str


def first_hour_steps(*, env_name: str, region: str, cluster_name: str, dashboard_name: str, model_store_bucket: str,
                     model_id: str, model_revision: str, ready_timeout: str, alb: bool = False,
                     api_hostname: str | None = None, webui_url: str | None = None) -> list[Step]:
    """The commands, in the order an operator runs them. Arguments may be CDK tokens (stack outputs).
    ready_timeout: the cold-start deadline KubeRay and the pipeline use (ColdStartBudget.initializing_timeout).
    alb: the environment puts the API behind the ALB (issue 13): add the steps that read its address.
    api_hostname: its DNS name, when external-dns writes it; webui_url: Open WebUI behind OIDC, if configured."""
    ns = VLLM_NAMESPACE
    base_url = LOCAL_SERVE_URL
    dns_note = (f"external-dns points {api_hostname} at it" if api_hostname else
                "point the DNS name of your certificate at it with a CNAME or Route 53 alias, docs/connecting.md")
    alb_steps = [
        # The ALB's DNS name is known only once the controller made it: read it from the Ingress status.
        Step("ApiUrl", f"The API's ALB address (HTTPS; {dns_note})",
             f"kubectl -n {ns} get ingress {API_INGRESS_NAME} "
             "-o jsonpath='{.status.loadBalancer.ingress[0].hostname}'"),
        Step("RunClientAlb", "Run the example client through the ALB (from the VPC or an allowed CIDR; "
                             "--ca-bundle only for a private CA)",
             f"OPENAI_BASE_URL=https://{api_hostname or '<your DNS name>'}/v1 .venv/bin/python -m tools.client"),
    ] if alb else []
    if alb and webui_url:
        alb_steps.append(Step("OpenWebUiUrl", "Open WebUI behind the ALB: sign in with your IdP account (its "
                                              "groups decide the role, docs/connecting.md)", webui_url))
    return [
        Step("UpdateKubeconfig", "Point kubectl at the cluster",
             f"aws eks update-kubeconfig --region {region} --name {cluster_name}"),
        Step("WarmModelStore", "Warm the model store once per model (the weights, streamed from the hub to S3; "
                               "set HF_TOKEN for a gated model): every new worker then fetches them from S3",
             f"AWS_REGION={region} .venv/bin/python -m serving.model_store prepare --bucket "
             f"{model_store_bucket} --model {model_id} --revision {model_revision}"),
        Step("RayServiceStatus", "Check the RayService (the first start of a model compiles it for Neuron once; "
                                 "`make cold-start` has the budget)",
             f"kubectl -n {ns} get rayservice {RAYSERVICE_NAME} && kubectl -n {ns} get pods -o wide && "
             f"kubectl -n {ns} wait rayservice/{RAYSERVICE_NAME} --for=condition=Ready --timeout={ready_timeout}"),
        Step("ReplicaStartupErrors", "If the RayService stays not ready: the replicas' fatal startup errors "
                                     "(one line each, with the setting behind it)",
             f"for p in $(kubectl -n {ns} get pods -l ray.io/node-type=worker -o name); do kubectl -n {ns} exec $p "
             f"-c {RAY_WORKER_CONTAINER} -- sh -c 'grep -h \"{STARTUP_ERROR_MARKER}\" "
             f"{RAY_LOG_DIR}/session_latest/logs/serve/replica_*.log | tail -n 3'; done"),
        Step("ApiKey", f"Export the '{APPS_KEY_NAME}' API key (kept in Secrets Manager, never in the stack)",
             f"export OPENAI_API_KEY=\"$({_secret_value(region, api_key_secret_name(cluster_name, APPS_KEY_NAME))}"
             f" | {_JSON_FIELD.format(field=KEY_CURRENT)})\""),
        Step("PortForwardServe", f"Port-forward the OpenAI-compatible endpoint to {base_url}",
             f"kubectl -n {ns} port-forward svc/{SERVE_SERVICE_NAME} {SERVE_PORT}:{SERVE_PORT}"),
        Step("PortForwardRayDashboard", f"Port-forward the Ray dashboard to {local_url(RAY_DASHBOARD_PORT)} "
                                        "(it asks for the Ray token this prints)",
             f"{_secret_value(region, ray_auth_secret_name(cluster_name))} && "
             f"kubectl -n {ns} port-forward svc/{RAY_HEAD_SERVICE_NAME} {RAY_DASHBOARD_PORT}:{RAY_DASHBOARD_PORT}"),
        Step("PortForwardOpenWebUI", f"Port-forward Open WebUI to {local_url(WEBUI_PORT)}",
             f"kubectl -n {WEBUI_NAMESPACE} port-forward svc/{WEBUI_SERVICE_NAME} {WEBUI_PORT}:{WEBUI_SERVICE_PORT}"),
        *alb_steps,
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


def model_store_bucket_for(cfg: EnvironmentConfig) -> str:
    """The bucket the inference stack names (config/model_store.py), for a shell where the account may
    be the caller's."""
    return bucket_name(cfg.cluster_name, cfg.account or CALLER_ACCOUNT, cfg.region)


def steps_for(cfg: EnvironmentConfig) -> list[Step]:
    """The steps for a configured environment (configured names, no deployed tokens)."""
    return first_hour_steps(env_name=cfg.name, region=cfg.region, cluster_name=cfg.cluster_name,
                            dashboard_name=dashboard_name_for(cfg),
                            model_store_bucket=model_store_bucket_for(cfg),
                            ready_timeout=cfg.worker_shape.cold_start.initializing_timeout,
                            model_id=cfg.model_id, model_revision=cfg.model_revision, alb=cfg.alb_enabled,
                            api_hostname=cfg.api_hostname,
                            webui_url=cfg.webui_url)

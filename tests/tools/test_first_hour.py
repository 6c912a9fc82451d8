"""The operator's first-hour commands: printed by the CLI and emitted as stack outputs, from one function."""

import subprocess
import sys

import aws_cdk as cdk
from aws_cdk.assertions import Template

from config import first_hour
from config.environments import load_config
from config.names import RAY_DASHBOARD_PORT, SERVE_PORT, SERVE_SERVICE_NAME, WEBUI_SERVICE_NAME
from platform_constructs.first_hour_outputs import FirstHourOutputs

REQUIRED = ("UpdateKubeconfig", "WarmModelStore", "RayServiceStatus", "PortForwardServe", "PortForwardRayDashboard",
            "PortForwardOpenWebUI", "RunClient", "RunBenchmark", "CloudWatchDashboard")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "tools.first_hour", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_prints_every_command_for_the_chosen_environment():
    cfg = load_config({"env": "prod"})
    result = _run("--env", "prod")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"aws eks update-kubeconfig --region {cfg.region} --name {cfg.cluster_name}" in out
    assert f"svc/{SERVE_SERVICE_NAME} {SERVE_PORT}:{SERVE_PORT}" in out
    assert f"{RAY_DASHBOARD_PORT}:{RAY_DASHBOARD_PORT}" in out
    assert f"svc/{WEBUI_SERVICE_NAME}" in out
    assert "python -m tools.client" in out and "make bench" in out and "--env prod" in out
    assert f"region={cfg.region}#dashboards/dashboard/{first_hour.dashboard_name_for(cfg)}" in out
    # every step's command is printed, in order
    positions = [out.index(step.command) for step in first_hour.steps_for(cfg)]
    assert positions == sorted(positions)
    assert {step.key for step in first_hour.steps_for(cfg)} >= set(REQUIRED)


def test_unknown_environment_is_one_clear_line():
    result = _run("--env", "staging")
    assert result.returncode == 2
    assert "env: unknown environment 'staging'" in result.stderr and "Traceback" not in result.stderr


def test_stack_outputs_carry_the_same_commands():
    cfg = load_config({"env": "dev"})
    app = cdk.App()
    stack = cdk.Stack(app, "FirstHourTest", env=cdk.Environment(account="111111111111", region=cfg.region))
    FirstHourOutputs(stack, "FirstHour", env_name=cfg.name, region=cfg.region, cluster_name=cfg.cluster_name,
                     dashboard_name=first_hour.dashboard_name_for(cfg),
                     model_store_bucket=first_hour.model_store_bucket_for(cfg), model_id=cfg.model_id,
                     model_revision=cfg.model_revision,
                     ready_timeout=cfg.worker_shape.cold_start.initializing_timeout, alb=cfg.alb_enabled)
    outputs = Template.from_stack(stack).to_json()["Outputs"]
    for number, step in enumerate(first_hour.steps_for(cfg), start=1):
        output = outputs[f"FirstHour{step.key}"]
        assert output["Value"] == step.command
        assert output["Description"] == f"{number}. {step.title}"


def test_stack_outputs_resolve_tokens_for_real_resource_names():
    cfg = load_config({"env": "dev"})
    app = cdk.App()
    stack = cdk.Stack(app, "FirstHourTokens", env=cdk.Environment(account="111111111111", region=cfg.region))
    param = cdk.CfnParameter(stack, "ClusterName", default="from-the-cluster")
    FirstHourOutputs(stack, "FirstHour", env_name=cfg.name, region=cfg.region, cluster_name=param.value_as_string,
                     dashboard_name=first_hour.dashboard_name_for(cfg),
                     model_store_bucket=first_hour.model_store_bucket_for(cfg), model_id=cfg.model_id,
                     model_revision=cfg.model_revision,
                     ready_timeout=cfg.worker_shape.cold_start.initializing_timeout)
    value = Template.from_stack(stack).to_json()["Outputs"]["FirstHourUpdateKubeconfig"]["Value"]
    assert value == {"Fn::Join": ["", [f"aws eks update-kubeconfig --region {cfg.region} --name ",
                                       {"Ref": "ClusterName"}]]}


def test_no_secret_value_in_the_commands():
    # The API key is fetched at run time from Secrets Manager, never written into an output.
    for step in first_hour.steps_for(load_config({"env": "dev"})):
        assert "OPENAI_API_KEY=" not in step.command or "secretsmanager get-secret-value" in step.command


def test_warm_model_store_command_is_one_the_cli_accepts():
    """The prepare command names the bucket the inference stack creates and this environment's model."""
    import shlex

    from config.model_store import CALLER_ACCOUNT, bucket_name
    from serving.model_store import _parser

    cfg = load_config({"env": "prod"})
    [step] = [s for s in first_hour.steps_for(cfg) if s.key == "WarmModelStore"]
    account = cfg.account or "123456789012"  # what the shell substitutes for CALLER_ACCOUNT
    argv = shlex.split(step.command.replace(CALLER_ACCOUNT, account))
    assert argv[:4] == [f"AWS_REGION={cfg.region}", ".venv/bin/python", "-m", "serving.model_store"]
    args = _parser().parse_args(argv[4:])
    assert args.command == "prepare" and args.src is None  # streamed from the hub
    assert (args.model, args.revision) == (cfg.model_id, cfg.model_revision)
    assert args.bucket == bucket_name(cfg.cluster_name, account, cfg.region)


def test_ready_wait_is_the_cold_start_deadline():
    """The operator's wait is KubeRay's initializing-timeout, derived from the budget, not typed apart."""
    cfg = load_config({"env": "dev"})
    [step] = [s for s in first_hour.steps_for(cfg) if s.key == "RayServiceStatus"]
    assert step.command.endswith(f"--timeout={cfg.worker_shape.cold_start.initializing_timeout}")


def test_the_alb_address_is_read_from_the_ingress_status():
    import dataclasses

    from config.names import API_INGRESS_NAME, VLLM_NAMESPACE

    cfg = load_config({"env": "dev"})
    steps = {s.key: s.command for s in first_hour.steps_for(cfg)}
    assert steps["ApiUrl"] == (f"kubectl -n {VLLM_NAMESPACE} get ingress {API_INGRESS_NAME} "
                               "-o jsonpath='{.status.loadBalancer.ingress[0].hostname}'")
    assert steps["RunClientAlb"].startswith("OPENAI_BASE_URL=https://")
    without = {s.key for s in first_hour.steps_for(dataclasses.replace(cfg, alb_enabled=False))}
    assert "ApiUrl" not in without and "PortForwardServe" in without


def test_named_endpoints_are_printed_when_configured():
    """With DNS names and Open WebUI behind OIDC (issue 13), the steps name the real URLs."""
    from config.environments import ENVIRONMENTS
    from tests.support.charts import OIDC_DNS

    steps = {s.key: s for s in first_hour.steps_for(OIDC_DNS)}
    assert steps["RunClientAlb"].command.startswith(f"OPENAI_BASE_URL=https://{OIDC_DNS.api_hostname}/v1 ")
    assert "external-dns points llm.dev.example.com at it" in steps["ApiUrl"].title
    assert steps["OpenWebUiUrl"].command == "https://chat.dev.example.com"
    plain = {s.key: s for s in first_hour.steps_for(load_config({"env": "dev"}))}
    assert "<your DNS name>" in plain["RunClientAlb"].command and "OpenWebUiUrl" not in plain
    assert ENVIRONMENTS["dev"].webui_oidc is None

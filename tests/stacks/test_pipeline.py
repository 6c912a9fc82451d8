"""The CodePipeline as synthesized by `cdk synth` (the session's dev app): source, tests before synth,
stage order, approval before prod, a smoke test after each stage, pinned tools, cross-account keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config.environments import PIPELINE, all_environments
from config.project import PIPELINE_STACK_NAME
from config.versions import CDK_ASSETS_VERSION
from platform_constructs.smoke_test import function_name_for
from stacks.pipeline_stack import SMOKE_SCRIPT, cdk_cli_version
from tests.support.synth import render

REPO = Path(__file__).resolve().parents[2]
ENV_STACK_SUFFIXES = {"Network", "Cluster", "Addons", "Observability"}


@pytest.fixture(scope="module")
def pipeline_template(synth_dev):
    assert PIPELINE_STACK_NAME in synth_dev.templates, "`cdk synth` must produce the pipeline stack"
    return synth_dev.templates[PIPELINE_STACK_NAME]


def _resources(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


@pytest.fixture(scope="module")
def pipeline(pipeline_template):
    (res,) = _resources(pipeline_template, "AWS::CodePipeline::Pipeline").values()
    return res["Properties"]


@pytest.fixture(scope="module")
def projects(pipeline_template):
    return _resources(pipeline_template, "AWS::CodeBuild::Project")


def _stage(pipeline, name):
    (stage,) = [s for s in pipeline["Stages"] if s["Name"] == name]
    return stage


def _buildspec(project) -> dict:
    return json.loads(project["Properties"]["Source"]["BuildSpec"])


def _project_of(action, projects):
    return projects[action["Configuration"]["ProjectName"]["Ref"]]


def test_pipeline_type_v2_from_the_configured_connection(pipeline):
    assert pipeline["PipelineType"] == "V2"
    source = _stage(pipeline, "Source")["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == PIPELINE.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == PIPELINE.repository
    assert source["Configuration"]["BranchName"] == PIPELINE.branch


def test_stages_in_order_dev_then_prod(pipeline):
    names = [s["Name"] for s in pipeline["Stages"]]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    envs = [cfg.name for cfg in all_environments()]
    assert envs[0] == "dev" and "prod" in envs
    positions = [names.index(env) for env in envs]
    assert positions == sorted(positions), f"environment stages out of order: {names}"
    assert names.index("dev") < names.index("prod")


def test_tests_run_before_synth(pipeline, projects):
    synth_action = _stage(pipeline, "Build")["Actions"][0]
    spec = _buildspec(_project_of(synth_action, projects))
    assert "make setup" in spec["phases"]["install"]["commands"]
    build = spec["phases"]["build"]["commands"]
    assert "make test" in build, build
    synth = [i for i, c in enumerate(build) if "synth" in c]
    assert synth and build.index("make test") < min(synth), f"tests must run before synthesis: {build}"
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def _deploys(stage):
    return [a for a in stage["Actions"] if a["ActionTypeId"]["Category"] == "Deploy"]


def test_manual_approval_before_prod_deploys_only(pipeline):
    prod = _stage(pipeline, "prod")
    approvals = [a for a in prod["Actions"] if a["ActionTypeId"]["Category"] == "Approval"]
    assert len(approvals) == 1
    assert approvals[0]["RunOrder"] < min(a["RunOrder"] for a in _deploys(prod))
    dev = _stage(pipeline, "dev")
    assert not [a for a in dev["Actions"] if a["ActionTypeId"]["Category"] == "Approval"], "dev deploys unattended"


@pytest.mark.parametrize("cfg", all_environments(), ids=lambda c: c.name)
def test_each_stage_deploys_its_stacks_then_smoke_tests(pipeline, projects, cfg):
    stage = _stage(pipeline, cfg.name)
    deployed = {a["Name"].split(".")[0] for a in _deploys(stage)}
    assert deployed >= {f"{cfg.stack_prefix}-{s}" for s in ENV_STACK_SUFFIXES}
    smoke = [a for a in stage["Actions"] if a["Name"] == f"SmokeTest-{cfg.name}"]
    assert len(smoke) == 1, [a["Name"] for a in stage["Actions"]]
    assert smoke[0]["RunOrder"] > max(a["RunOrder"] for a in _deploys(stage)), "smoke test runs after every deploy"
    project = _project_of(smoke[0], projects)
    variables = {v["Name"]: render(v["Value"]) for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert variables["SMOKE_REGION"] == cfg.region
    assert variables["SMOKE_FUNCTION"].endswith(f":lambda:{cfg.region}:{cfg.account or PIPELINE.account}"
                                                f":function:{function_name_for(cfg.stack_prefix)}")
    assert _buildspec(project)["phases"]["build"]["commands"] == [f"bash {SMOKE_SCRIPT}"]
    assert (REPO / SMOKE_SCRIPT).is_file()


def test_smoke_step_may_invoke_only_its_function(pipeline_template, projects):
    policies = _resources(pipeline_template, "AWS::IAM::Policy")
    invoke = [st for p in policies.values() for st in p["Properties"]["PolicyDocument"]["Statement"]
              if st["Action"] == "lambda:InvokeFunction"]
    resources = [render(st["Resource"]) for st in invoke]
    assert all(isinstance(r, str) and "*" not in r for r in resources), resources
    assert {r.rsplit(":", 1)[-1] for r in resources} == {function_name_for(cfg.stack_prefix)
                                                         for cfg in all_environments()}


def test_cross_account_keys_and_pinned_tools(pipeline_template, projects):
    keys = _resources(pipeline_template, "AWS::KMS::Key")
    # The artifact bucket's cross-account key and the log groups' key (log_encryption.py), both rotated.
    assert len(keys) == 2 and sum(lid.startswith("LogsKey") for lid in keys) == 1, sorted(keys)
    assert all(k["Properties"]["EnableKeyRotation"] is True for k in keys.values())
    (bucket,) = _resources(pipeline_template, "AWS::S3::Bucket").values()
    sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    installs = " ".join(json.dumps(p["Properties"]["Source"].get("BuildSpec", "")) for p in projects.values())
    assert f"aws-cdk@{cdk_cli_version()}" in installs, "self-mutation installs the CLI package.json pins"
    assert "aws-cdk@2\"" not in installs and "aws-cdk@2 " not in installs
    assert cdk_cli_version() == json.loads((REPO / "package.json").read_text())["devDependencies"]["aws-cdk"]


def test_asset_publishing_pins_cdk_assets(synth_dev):
    specs = [p.read_text() for p in Path(synth_dev.outdir).glob("buildspec-*.yaml")]
    assert specs, "the asset publishing buildspec is written to the cloud assembly"
    assert all(f"cdk-assets@{CDK_ASSETS_VERSION}" in s for s in specs)


def _stage_assembly(outdir: Path, env: str) -> dict:
    manifest = json.loads((outdir / f"assembly-{PIPELINE_STACK_NAME}-{env}" / "manifest.json").read_text())
    return {k: v for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"}


@pytest.mark.parametrize("cfg", all_environments(), ids=lambda c: c.name)
def test_stage_builds_the_environment_in_its_own_account_and_region(synth_dev, cfg):
    stacks = _stage_assembly(Path(synth_dev.outdir), cfg.name)
    suffixes = {a["displayName"].rsplit("-", 1)[-1] for a in stacks.values()}
    assert ENV_STACK_SUFFIXES <= suffixes
    account = cfg.account or PIPELINE.account
    assert {a["environment"] for a in stacks.values()} == {f"aws://{account}/{cfg.region}"}


def test_pipeline_is_nag_clean(synth_dev):
    nag = [r for r in synth_dev.validation_report.get("pluginReports", []) if r["pluginName"] == "AwsSolutions"]
    for report in nag:
        pipeline_violations = [v for v in report["violations"]
                               if any(c["constructPath"].startswith(PIPELINE_STACK_NAME) for c in v["violatingConstructs"])]
        assert pipeline_violations == []


def test_lifecycle_doc_names_what_synth_produces(synth_dev):
    """docs/lifecycle.md tells operators stack and function names to type: they must exist."""
    doc = (REPO / "docs" / "lifecycle.md").read_text()
    stacks = set(synth_dev.templates)
    for name in (PIPELINE_STACK_NAME, f"{PIPELINE_STACK_NAME}-support-us-west-2"):
        assert name in doc and name in stacks, name
    for cfg in all_environments():
        assert cfg.name in {p.name.split("-")[-1] for p in Path(synth_dev.outdir).glob(f"assembly-{PIPELINE_STACK_NAME}-*")}
    assert function_name_for(all_environments()[0].stack_prefix) in doc
    assert "make test" in doc and "PromoteToProd" in doc


# --- the synth step runs in CodeBuild as synthesized (issue 9, item 4) ------------------------------

def test_synth_step_pins_its_image_runtimes_and_installs(pipeline, projects):
    project = _project_of(_stage(pipeline, "Build")["Actions"][0], projects)
    environment = project["Properties"]["Environment"]
    assert environment["Image"] == "aws/codebuild/standard:7.0"  # Ubuntu 22.04
    assert environment["ComputeType"] == "BUILD_GENERAL1_LARGE"
    # Network namespaces for the cluster-in-a-box need a privileged build container.
    assert environment["PrivilegedMode"] is True
    install = _buildspec(project)["phases"]["install"]
    # Python 3.11 as the venvs are made with, Node 22 (jsii no longer supports 20).
    assert install.get("runtime-versions") == {"python": "3.11", "nodejs": "22"}, install
    from stacks.pipeline_stack import SYNTH_APT_PACKAGES, SYNTH_RUNTIME_VERSIONS

    assert SYNTH_RUNTIME_VERSIONS == install["runtime-versions"]
    apt = [c for c in install["commands"] if "apt-get install" in c]
    assert len(apt) == 1 and all(p in apt[0].split() for p in SYNTH_APT_PACKAGES)
    assert "snap" not in json.dumps(install) and "chromium" not in apt[0], "no snap-only browser from apt"
    assert install["commands"][-1] == "make setup"
    assert project["Properties"]["TimeoutInMinutes"] == 120


def test_what_the_synth_step_runs_installs_no_cuda_and_no_snap():
    """`make test` reaches torch and the browser only through the scripts that choose CPU / non-snap."""
    makefile = (REPO / "Makefile").read_text()
    assert "bash serving/local/setup_venv.sh" in makefile and "bash tools/webui/setup_venv.sh" in makefile
    for script in ("serving/local/setup_venv.sh", "tools/webui/setup_venv.sh"):
        assert "install_cpu_torch.sh" in (REPO / script).read_text()
    assert "install_browser.sh" in (REPO / "tools/webui/setup_venv.sh").read_text()


# --- admin access and the endpoint come from the config, in every stage (issue 9, item 6) -----------

def _stage_template(outdir: Path, env: str, suffix: str) -> dict:
    stacks = _stage_assembly(outdir, env)
    (artifact,) = [a for a in stacks.values() if a["displayName"].endswith(f"-{suffix}")]
    path = outdir / f"assembly-{PIPELINE_STACK_NAME}-{env}" / artifact["properties"]["templateFile"]
    return json.loads(path.read_text())


@pytest.mark.parametrize("cfg", all_environments(), ids=lambda c: c.name)
def test_each_stage_keeps_the_configured_admin_entries_and_endpoint(synth_dev, cfg):
    from aws_cdk.region_info import RegionInfo

    from config.environments import admin_role_arn

    template = _stage_template(Path(synth_dev.outdir), cfg.name, "Cluster")
    account = cfg.account or PIPELINE.account
    entries = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EKS::AccessEntry"
               and any("AmazonEKSClusterAdminPolicy" in json.dumps(p) for p in r["Properties"].get("AccessPolicies", []))]
    # Every cluster-admin entry but CDK's own kubectl handler role (a reference to a role of the stack).
    admins = {render(e["PrincipalArn"]) for e in entries} - {render(e["PrincipalArn"]) for e in entries
                                                              if "Fn::GetAtt" in e["PrincipalArn"]}
    # cdk.json's @aws-cdk/core:enablePartitionLiterals: a stack in a known region writes its partition as a literal.
    partition = RegionInfo.get(cfg.region).partition
    expected = {admin_role_arn(a, partition=partition, account=account) for a in cfg.admin_role_arns}
    assert cfg.admin_role_arns and admins == expected
    (cluster,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EKS::Cluster"]
    vpc = cluster["ResourcesVpcConfig"]
    assert vpc.get("PublicAccessCidrs", []) == list(cfg.endpoint_public_cidrs)
    assert vpc["EndpointPublicAccess"] is bool(cfg.endpoint_public_cidrs)


# --- IAM wildcards of what CDK Pipelines generates -----------------------------------------------------

def _pipeline_statements(template):
    return [st for r in _resources(template, "AWS::IAM::Policy").values()
            for st in r["Properties"]["PolicyDocument"]["Statement"]]


def test_generated_star_resources_are_scoped(pipeline_template):
    """CDK writes "*" for DescribeStacks, ListBucket, the asset roles' CodeBuild calls and the replication
    key; all of these support resource-level permissions, so the template names them instead."""
    statements = _pipeline_statements(pipeline_template)
    assert not [st for st in statements if "*" in (st["Resource"] if isinstance(st["Resource"], list)
                                                   else [st["Resource"]])]
    account = PIPELINE.account

    def resources_of(action):
        return [render(r) for st in statements if action in (st["Action"] if isinstance(st["Action"], list)
                                                             else [st["Action"]])
                for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])]

    stacks = [r for r in resources_of("cloudformation:DescribeStacks") if ":cloudformation:" in r]
    assert stacks and all(re.search(rf":cloudformation:[a-z0-9-]+:{account}:stack/\*$", r) for r in stacks)
    buckets = [r for r in resources_of("s3:ListBucket") if ":s3:::cdk-" in r]
    assert buckets and all(re.search(rf":s3:::cdk-hnb659fds-assets-{account}-[a-z0-9-]+$", r) for r in buckets)
    projects = resources_of("codebuild:StartBuild")
    assert projects and all(re.fullmatch(r"\$\{Pipeline[A-Za-z0-9]+\.Arn\}", r) for r in projects), projects
    keys = [r for r in resources_of("kms:Decrypt") if ":kms:" in r]
    assert keys and all(re.search(rf":kms:[a-z0-9-]+:{account}:key/\*$", r) for r in keys)


def test_every_generated_wildcard_is_acknowledged_with_what_it_covers(pipeline_template):
    """Each wildcard resource gets the reason written for its pattern (stacks.pipeline_stack.WILDCARD_REASONS);
    no reason claims a scoping the ARN does not have, and an unknown wildcard has no reason at all."""
    from stacks.pipeline_stack import WILDCARD_REASONS, _render, wildcard_reason

    rendered = {_render(r) for st in _pipeline_statements(pipeline_template)
                for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])}
    wildcards = sorted(r for r in rendered if "*" in r)
    assert len(wildcards) >= 8
    used = {wildcard_reason(r) for r in wildcards}
    assert used == {reason for _, reason in WILDCARD_REASONS}, "every reason is used: none is stale"
    for r in wildcards:
        reason = wildcard_reason(r)
        if "Every " in reason:  # account-wide: the ARN names no project
            assert not re.search(r"<[A-Za-z0-9]+>", r), r
        if "of this pipeline's artifact bucket" in reason:
            assert r.endswith("/*") and ("ArtifactsBucket" in r or "plicationbucket" in r), r
    with pytest.raises(ValueError, match="has no reason"):
        wildcard_reason("arn:aws:s3:::*")

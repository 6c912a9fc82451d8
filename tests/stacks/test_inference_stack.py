"""The inference stack: image asset with pinned build args, generated secrets, ESO with least privilege,
and the charts applied to the cluster -- with no secret value anywhere in the template."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from tests.cluster_box.box import image_config_files  # noqa: E402
from tests.support.synth import render  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"
# The image context: what the serving image needs (serving/ and the config/ modules it imports) ...
# (the config/ modules exactly as serving/Dockerfile COPYs them: a module the Dockerfile adds must be in the asset)
IMAGE_FILES = ["serving/Dockerfile", "serving/app.py", "serving/local/serve.py", *image_config_files()]
# ... and what must stay out of the asset (and of its content hash, the image tag).
STRAY_FILES = ["config/environments.py", "config/presets.py", "tools/client.py", "README.md",
               "serving/__pycache__/app.cpython-311.pyc", "serving/.cache/x", "k8s_charts/vllm_chart.py"]
HELM = "Custom::AWSCDK-EKS-HelmChart"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import dataclasses

    import aws_cdk as cdk
    from aws_cdk import assertions, aws_eks_v2 as eks

    from config.environments import load_config
    from stacks.inference_stack import DOCKERFILE, InferenceStack

    context = tmp_path_factory.mktemp("image-context")
    for path in IMAGE_FILES + STRAY_FILES:
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        (context / path).write_text("FROM scratch\n" if path == DOCKERFILE else "x\n")
    cfg = dataclasses.replace(load_config({"env": "dev"}), hf_token_secret_name="llama3/hf-token")
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk-out")))
    env = cdk.Environment(account="123456789012", region=cfg.region)
    holder = cdk.Stack(app, "Holder", env=env)
    cluster = eks.Cluster.from_cluster_attributes(
        holder, "Cluster", cluster_name=cfg.cluster_name,
        kubectl_provider=eks.KubectlProvider.from_kubectl_provider_attributes(
            holder, "Kubectl", service_token="arn:aws:lambda:us-east-1:123456789012:function:kubectl"),
    )
    stack = InferenceStack(app, "Inference", cfg=cfg, cluster=cluster, image_context=context, env=env)
    assembly = app.synth()
    template = assembly.get_stack_by_name("Inference").template
    return cfg, template, assembly, assertions.Template.from_json(template)


def _of_type(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def test_charts_are_applied_in_order(stack):
    _, template, _, _ = stack
    manifests = _of_type(template, MANIFEST)
    kinds = {}
    for lid, res in manifests.items():
        for obj in json.loads(render(res["Properties"]["Manifest"])):
            kinds.setdefault(obj["kind"], []).append(lid)
    assert {"Namespace", "RayService", "Deployment", "ExternalSecret", "ClusterSecretStore"} <= set(kinds)
    secrets_lid = kinds["ExternalSecret"][0]
    deps = manifests[secrets_lid].get("DependsOn", [])
    assert set(kinds["RayService"]) <= set(deps) and set(kinds["Deployment"]) <= set(deps)
    eso = next(lid for lid, r in _of_type(template, HELM).items() if r["Properties"]["Release"] == "external-secrets")
    assert eso in deps


def test_rayservice_uses_the_image_asset(stack):
    _, template, assembly, _ = stack
    rs = next(o for r in _of_type(template, MANIFEST).values() for o in json.loads(render(r["Properties"]["Manifest"]))
              if o["kind"] == "RayService")
    image = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["image"]
    assert "dkr.ecr" in image and ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
    manifest_assets = json.loads(Path(assembly.directory, "Inference.assets.json").read_text())["dockerImages"]
    [docker] = manifest_assets.values()
    from config.versions import NEURON_VLLM_IMAGE
    assert docker["source"]["dockerBuildArgs"] == {"BASE_IMAGE": NEURON_VLLM_IMAGE}
    # ...and BASE_IMAGE is the argument serving/Dockerfile builds FROM.
    dockerfile = (REPO_ROOT / "serving" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert docker["source"]["dockerFile"] == "serving/Dockerfile"
    tag = next(iter(docker["destinations"].values()))["imageTag"]
    assert tag in image


def test_image_asset_holds_serving_and_the_config_modules_it_imports(stack):
    """The asset's staged context is exactly serving/ plus config/{__init__,request_limits,secrets}.py
    (serving/ imports them; serving/Dockerfile COPYs them): nothing else changes the image tag."""
    _, _, assembly, _ = stack
    [docker] = json.loads(Path(assembly.directory, "Inference.assets.json").read_text())["dockerImages"].values()
    staged = Path(assembly.directory, docker["source"]["directory"])
    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    assert files == sorted(IMAGE_FILES)
    imported = {f"config/{m}.py" for m in ("__init__", "request_limits", "secrets")}
    assert imported <= set(files)


def test_secrets_are_generated_not_written(stack):
    from config.secrets import DEFAULT_API_KEYS, KEY_CURRENT
    cfg, template, _, t = stack
    secrets = {s["Properties"]["Name"]: s for s in _of_type(template, "AWS::SecretsManager::Secret").values()}
    c = cfg.cluster_name
    api_keys = {f"{c}/vllm-api-keys/{k.name}" for k in DEFAULT_API_KEYS}
    assert set(secrets) == api_keys | {f"{c}/open-webui-secret-key", f"{c}/open-webui-admin-password", f"{c}/ray-auth-token"}
    for name, s in secrets.items():
        generator = s["Properties"]["GenerateSecretString"]
        assert "SecretString" not in s["Properties"]
        assert generator["PasswordLength"] >= 32 and generator["ExcludePunctuation"] is True
        if name in api_keys:  # {"current": <generated>}: a rotation adds "previous" beside it
            assert (generator["SecretStringTemplate"], generator["GenerateStringKey"]) == ("{}", KEY_CURRENT)
        else:
            assert "GenerateStringKey" not in generator


def test_eso_role_reads_only_these_secrets(stack):
    cfg, template, _, _ = stack
    policies = _of_type(template, "AWS::IAM::Policy")
    statements = [st for p in policies.values() for st in p["Properties"]["PolicyDocument"]["Statement"]]
    actions = {a for st in statements for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    assert actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    resources = [render(r) for st in statements for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])]
    assert all(("llama3/hf-token" in r) or r.startswith("${") for r in resources), resources
    assert not any(r == "*" for r in resources)
    # Exactly the generated secrets (by their logical ids) and the imported HF token: nothing else.
    generated = set(_of_type(template, "AWS::SecretsManager::Secret"))
    refs = {r["Ref"] for st in statements for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
            if isinstance(r, dict) and "Ref" in r}
    assert refs == generated
    [assoc] = [a for a in _of_type(template, "AWS::EKS::PodIdentityAssociation").values()
               if a["Properties"]["Namespace"] == "external-secrets"]
    assert assoc["Properties"]["ServiceAccount"] == "external-secrets"


def test_eso_chart_pinned(stack):
    _, template, _, _ = stack
    from config.versions import EXTERNAL_SECRETS_VERSION
    [chart] = [r for r in _of_type(template, HELM).values() if r["Properties"]["Release"] == "external-secrets"]
    assert chart["Properties"]["Version"] == EXTERNAL_SECRETS_VERSION
    values = json.loads(render(chart["Properties"]["Values"]))
    assert values["serviceAccount"]["name"] == "external-secrets"


def test_no_secret_value_in_template(stack):
    _, template, _, _ = stack
    assert '"SecretString"' not in json.dumps(template)  # only GenerateSecretString
    objs = [o for r in _of_type(template, MANIFEST).values() for o in json.loads(render(r["Properties"]["Manifest"]))]
    assert objs and not [o for o in objs if o["kind"] == "Secret"]  # Kubernetes Secrets come from ESO only

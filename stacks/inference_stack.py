"""InferenceStack: the serving image, the secrets, the External Secrets Operator and the inference charts.

Deployed after AddonsStack (KubeRay's CRDs and the Neuron scheduler must exist). The charts are the
same cdk8s charts `make synth` writes to dist/; here each one becomes a KubernetesManifest.
"""

from __future__ import annotations

from pathlib import Path

import cdk8s
from aws_cdk import IgnoreMode, RemovalPolicy, Stack, aws_ecr_assets as ecr_assets, aws_eks_v2 as eks, aws_secretsmanager as sm
from constructs import Construct

from config.environments import EnvironmentConfig
from config.names import CORE_NODE_ROLE, NODE_ROLE_LABEL
from config.secrets import api_key_secret_name, webui_secret_name
from config.versions import NEURON_VLLM_IMAGE
from k8s_charts import ChartInputs, build_charts
from platform_constructs.addons.external_secrets import ExternalSecretsAddOn, ExternalSecretsProps
from platform_constructs.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = "serving/Dockerfile"
# Build arguments of serving/Dockerfile, from the single place versions are pinned (Ray is pinned in
# serving/requirements-image.txt; tests/serving/test_image.py checks it equals config's RAY_VERSION).
IMAGE_BUILD_ARGS = {"BASE_IMAGE": NEURON_VLLM_IMAGE}


class InferenceStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, cfg: EnvironmentConfig, cluster: eks.ICluster,
        ingress_namespace: str | None = None, image_context: Path = REPO_ROOT, **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        if not (image_context / DOCKERFILE).is_file():
            raise FileNotFoundError(f"{image_context / DOCKERFILE} is missing: the serving image is built from it")
        # Context = the repository with only serving/ (and the three config/ files the app imports) in
        # it: the image has /app/serving and /app/config (PYTHONPATH=/app), and the asset hash (its
        # tag) changes exactly when those change.
        self.image = ecr_assets.DockerImageAsset(
            self, "ServingImage", directory=str(image_context), file=DOCKERFILE,
            build_args=IMAGE_BUILD_ARGS, platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=["*", "!serving", "serving/**/__pycache__", "serving/**/.cache",
                     "!config", "config/*", "!config/__init__.py", "!config/request_limits.py", "!config/secrets.py"],
            ignore_mode=IgnoreMode.DOCKER,
        )

        # Generated keys: never typed by a person, never in a template (only their names are).
        self.api_key = self._generated_secret("ApiKey", api_key_secret_name(cfg.cluster_name),
                                              "API key of the vLLM OpenAI endpoint (clients and Open WebUI)")
        self.webui_key = self._generated_secret("WebUiSecretKey", webui_secret_name(cfg.cluster_name),
                                                "Open WebUI session-signing key")
        readable: list[sm.ISecret] = [self.api_key, self.webui_key]
        self.hf_token = None
        if cfg.hf_token_secret_name:
            # Created by the operator (it holds a personal token); only read here.
            self.hf_token = sm.Secret.from_secret_name_v2(self, "HfToken", cfg.hf_token_secret_name)
            readable.append(self.hf_token)

        self.external_secrets = ExternalSecretsAddOn(self, "ExternalSecrets", cluster=cluster, props=ExternalSecretsProps(
            node_selector={NODE_ROLE_LABEL: CORE_NODE_ROLE}, readable_secrets=tuple(readable),
        ))

        inputs = ChartInputs.for_environment(cfg, self.image.image_uri, ingress_namespace=ingress_namespace)
        charts = build_charts(cdk8s.App(), inputs)
        # KubernetesManifest in this stack (cluster.add_cdk8s_chart would create it in the cluster's
        # stack and tie that stack to this one's image and secrets).
        self.manifests = {
            name: eks.KubernetesManifest(self, f"Chart-{name}", cluster=cluster, manifest=chart.to_json())
            for name, chart in charts.in_apply_order()
        }
        secrets_manifest = self.manifests["30-secrets"]
        secrets_manifest.node.add_dependency(self.external_secrets.chart, self.manifests["10-vllm"], self.manifests["20-open-webui"])

    def _generated_secret(self, id: str, name: str, description: str) -> sm.Secret:
        secret = sm.Secret(
            self, id, secret_name=name, description=description,
            generate_secret_string=sm.SecretStringGenerator(password_length=48, exclude_punctuation=True),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(secret, {
            "AwsSolutions-SMG4": "Rotation is an operator action (docs/charts.md): External Secrets "
                                 "re-syncs within 1 h and the pods pick the key up on restart; an "
                                 "automatic rotation would break clients holding the old key.",
        })
        return secret

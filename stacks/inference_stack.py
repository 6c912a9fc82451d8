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
from config.model_store import bucket_name
from config.names import CORE_NODE_ROLE, NODE_ROLE_LABEL, RAY_WORKER_SERVICE_ACCOUNT, VLLM_NAMESPACE
from config.secrets import (
    KEY_CURRENT, SECRET_REFRESH_INTERVAL, api_key_secret_name, ray_auth_secret_name, webui_admin_secret_name,
    webui_secret_name,
)
from config.versions import NEURON_VLLM_IMAGE
from k8s_charts import ChartInputs, build_charts
from k8s_charts.inputs import api_key_specs
from platform_constructs.addons.external_secrets import ExternalSecretsAddOn, ExternalSecretsProps
from platform_constructs.addons.pod_identity import pod_identity_role
from platform_constructs.model_store import ModelStore
from platform_constructs.nag import acknowledge
from platform_constructs.waf import ApiWebAcl

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
        # Context = the repository with only serving/ (and the config/ files the app imports) in
        # it: the image has /app/serving and /app/config (PYTHONPATH=/app), and the asset hash (its
        # tag) changes exactly when those change.
        self.image = ecr_assets.DockerImageAsset(
            self, "ServingImage", directory=str(image_context), file=DOCKERFILE,
            build_args=IMAGE_BUILD_ARGS, platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=["*", "!serving", "serving/**/__pycache__", "serving/**/.cache",
                     "!config", "config/*", "!config/__init__.py", "!config/request_limits.py", "!config/secrets.py",
                     "!config/model_store.py", "!config/models.py", "!config/names.py", "!config/project.py"],
            ignore_mode=IgnoreMode.DOCKER,
        )

        # Generated secrets: never typed by a person, never in a template (only their names are).
        # One per named API key, as JSON {"current": <key>} so a rotation can add "previous" beside it.
        self.api_keys = {
            spec.name: self._generated_secret(
                f"ApiKey-{spec.name}", api_key_secret_name(cfg.cluster_name, spec.name),
                f"API key '{spec.name}' of the vLLM OpenAI endpoint", json_field=KEY_CURRENT)
            for spec in api_key_specs(cfg)
        }
        self.webui_key = self._generated_secret("WebUiSecretKey", webui_secret_name(cfg.cluster_name),
                                                "Open WebUI session-signing key")
        self.webui_admin = self._generated_secret("WebUiAdminPassword", webui_admin_secret_name(cfg.cluster_name),
                                                  "Open WebUI first admin's password")
        self.ray_auth = self._generated_secret("RayAuthToken", ray_auth_secret_name(cfg.cluster_name),
                                               "Ray token auth (KubeRay authOptions) of the RayService")
        # Exactly what the charts sync (k8s_charts/secrets_chart.py), nothing else of the account.
        readable: list[sm.ISecret] = [*self.api_keys.values(), self.webui_key, self.webui_admin, self.ray_auth]
        self.hf_token = None
        if cfg.hf_token_secret_name:
            # Created by the operator (it holds a personal token); only read here.
            self.hf_token = sm.Secret.from_secret_name_v2(self, "HfToken", cfg.hf_token_secret_name)
            readable.append(self.hf_token)
        self.webui_oidc_client = None
        if cfg.webui_oidc:
            # The IdP client's id and secret (config/exposure.py): created by the operator, only read here.
            self.webui_oidc_client = sm.Secret.from_secret_name_v2(self, "WebUiOidcClient", cfg.webui_oidc.client_secret_name)
            readable.append(self.webui_oidc_client)

        self.external_secrets = ExternalSecretsAddOn(self, "ExternalSecrets", cluster=cluster, props=ExternalSecretsProps(
            node_selector={NODE_ROLE_LABEL: CORE_NODE_ROLE}, readable_secrets=tuple(readable),
        ))

        # The model store (config/model_store.py) and the Ray workers' Pod Identity role on it: read
        # weights/ and artifacts/, write artifacts/ only. Created before the charts so the worker
        # pods' credentials exist when they start.
        self.model_store = ModelStore(self, "ModelStore", cluster_name=cfg.cluster_name,
                                      bucket_name=bucket_name(cfg.cluster_name, self.account, self.region))
        self.worker_role = pod_identity_role(self, "RayWorkerRole", cluster=cluster,
                                             description="Ray workers: read the model store, write its artifacts/")
        self.model_store.grant_worker(self.worker_role)
        self.worker_pod_identity = eks.CfnPodIdentityAssociation(
            self, "RayWorkerPodIdentity", cluster_name=cluster.cluster_name, namespace=VLLM_NAMESPACE,
            service_account=RAY_WORKER_SERVICE_ACCOUNT, role_arn=self.worker_role.role_arn,
        )

        # An internet-facing ALB only with AWS WAF (issue 13); the controller associates it (waf.py says why).
        self.web_acl = ApiWebAcl(self, "ApiWebAcl", name=f"{cfg.cluster_name}-api",
                                 requests_per_5min=cfg.alb_waf_requests_per_5min) \
            if cfg.alb_enabled and cfg.alb_internet_facing else None
        inputs = ChartInputs.for_environment(cfg, self.image.image_uri, ingress_namespace=ingress_namespace,
                                             model_store_bucket=self.model_store.bucket.bucket_name,
                                             waf_acl_arn=self.web_acl.arn if self.web_acl else None)
        charts = build_charts(cdk8s.App(), inputs)
        # KubernetesManifest in this stack (cluster.add_cdk8s_chart would create it in the cluster's
        # stack and tie that stack to this one's image and secrets).
        self.manifests = {
            name: eks.KubernetesManifest(self, f"Chart-{name}", cluster=cluster, manifest=chart.to_json())
            for name, chart in charts.in_apply_order()
        }
        self.manifests["10-vllm"].node.add_dependency(self.worker_pod_identity)
        secrets_manifest = self.manifests["30-secrets"]
        secrets_manifest.node.add_dependency(self.external_secrets.chart, self.manifests["10-vllm"], self.manifests["20-open-webui"])

    def _generated_secret(self, id: str, name: str, description: str, json_field: str | None = None) -> sm.Secret:
        # 48 letters and digits: no character a header, a JSON string, bcrypt (Open WebUI, 72 bytes) or a
        # shell would need escaped. With json_field the value is {json_field: <generated>}.
        generator = sm.SecretStringGenerator(password_length=48, exclude_punctuation=True) if json_field is None else \
            sm.SecretStringGenerator(password_length=48, exclude_punctuation=True,
                                     secret_string_template="{}", generate_string_key=json_field)
        secret = sm.Secret(
            self, id, secret_name=name, description=description,
            generate_secret_string=generator, removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(secret, {
            "AwsSolutions-SMG4": "Rotation is an operator action, documented step by step in docs/security.md: "
                                 "put {\"current\": new, \"previous\": old}, wait for External Secrets to sync "
                                 f"(refreshInterval {SECRET_REFRESH_INTERVAL}), move the clients to the new key, "
                                 "then drop \"previous\". A Lambda rotation would replace the key under clients "
                                 "that still hold the old one.",
        })
        return secret

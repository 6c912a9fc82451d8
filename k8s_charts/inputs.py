"""What the inference charts need besides the environment config, validated before any chart is built."""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.environments import ConfigError, EnvironmentConfig, check_api_key_names
from config.model_store import ModelStoreError, bucket_name
from config.secrets import (
    ApiKeySpec, api_key_secret_name, ray_auth_secret_name, webui_admin_secret_name, webui_secret_name,
)

# registry/repo[:tag][@sha256:digest]; a tag or a digest is required, and the tag may not be "latest".
_IMAGE = re.compile(
    r"^[a-z0-9.\-_]+(:\d+)?(/[a-z0-9.\-_]+)+(:(?P<tag>[\w][\w.\-]{0,127}))?(@sha256:[a-f0-9]{64})?$"
)
# The account dist/ names when the environment has none (its image URI uses the same, write_dist.py).
PLACEHOLDER_ACCOUNT = "000000000000"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_image(field: str, image: str) -> str:
    """Reject an image that is not pinned: no tag, `:latest`, or a malformed reference."""
    if "${Token[" in (image or ""):
        return image  # a CDK DockerImageAsset URI: resolved at deploy time, tagged by content hash
    m = _IMAGE.match(image or "")
    if not m:
        raise ConfigError(f"{field}: {image!r} is not an image reference like REGISTRY/REPO:TAG")
    if "@sha256:" not in image and not m.group("tag"):
        raise ConfigError(f"{field}: {image!r} has no tag; pin a version tag or a digest")
    if m.group("tag") == "latest":
        raise ConfigError(f"{field}: {image!r} uses :latest; pin a version tag or a digest")
    return image


def api_key_specs(cfg: EnvironmentConfig) -> tuple[ApiKeySpec, ...]:
    """The environment's named API keys (EnvironmentConfig.api_keys, validated there): the one place
    the charts, the serve config and the inference stack read them from."""
    return tuple(cfg.api_keys)


@dataclass(frozen=True)
class ChartInputs:
    cfg: EnvironmentConfig
    serving_image: str  # the image built from serving/ (ECR URI of the CDK asset, or --image for dist/)
    # Secrets Manager names (or ARNs) the External Secrets Operator copies into Kubernetes Secrets.
    api_key_secrets: tuple[tuple[str, str], ...]  # (key name, Secrets Manager name) per named API key
    webui_secret: str
    webui_admin_secret: str
    ray_auth_secret: str
    # The environment's S3 model store (config/model_store.py); the workers fetch from it.
    model_store_bucket: str
    hf_token_secret: str | None = None
    # Namespace of an ingress controller allowed to reach Open WebUI and the serve port (None: none).
    ingress_namespace: str | None = None
    # The WAF web ACL of an internet-facing ALB (the inference stack makes it; None when internal).
    waf_acl_arn: str | None = None

    def __post_init__(self) -> None:
        check_image("serving_image", self.serving_image)
        check_api_key_names([name for name, _ in self.api_key_secrets])
        if self.ingress_namespace is not None and not _NAMESPACE.match(self.ingress_namespace):
            raise ConfigError(f"ingress_namespace: {self.ingress_namespace!r} is not a valid namespace name")

    @classmethod
    def for_environment(cls, cfg: EnvironmentConfig, serving_image: str, **kw) -> "ChartInputs":
        """Inputs with the Secrets Manager names the inference stack creates for this environment."""
        kw.setdefault("api_key_secrets", tuple(
            (spec.name, api_key_secret_name(cfg.cluster_name, spec.name)) for spec in api_key_specs(cfg)))
        kw.setdefault("webui_secret", webui_secret_name(cfg.cluster_name))
        kw.setdefault("webui_admin_secret", webui_admin_secret_name(cfg.cluster_name))
        kw.setdefault("ray_auth_secret", ray_auth_secret_name(cfg.cluster_name))
        kw.setdefault("hf_token_secret", cfg.hf_token_secret_name)
        if "model_store_bucket" not in kw:
            try:  # the name the inference stack gives it; dist/ without an account: a placeholder one
                kw["model_store_bucket"] = bucket_name(cfg.cluster_name, cfg.account or PLACEHOLDER_ACCOUNT, cfg.region)
            except ModelStoreError as exc:
                raise ConfigError(str(exc)) from None
        return cls(cfg=cfg, serving_image=serving_image, **kw)

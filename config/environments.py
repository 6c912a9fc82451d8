"""Typed, validated per-environment configuration.

`load_config(app_context)` picks an environment with `-c env=NAME` (default: dev) and applies a few
`-c key=value` overrides. Every value is checked here, before any construct is created, so a mistake
stops `cdk synth` with one line naming the field and what is allowed instead of a stack trace.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

from config import project
from config.exposure import ExposureError, WebUiOidc, check_dns, check_webui_oidc
from config.ingress import DEFAULT_WAF_REQUESTS_PER_5MIN, ssm_certificate_reference, WAF_RATE_LIMIT_MAX, WAF_RATE_LIMIT_MIN
from config.models import DEFAULT_CLUSTER_MODEL, KnownModel, UnknownModelError, known_model
from config.presets import DEFAULT_PRESET, AcceleratorPreset, PresetError, resolve_preset
from config.project import PLATFORM_NAME, default_cluster_name
from config.request_limits import RequestLimits, RequestLimitsError, derive_request_limits
from config.secrets import DEFAULT_API_KEYS, KEY_NAME_PATTERN, REQUIRED_KEY_NAMES, ApiKeySpec
from config.versions import DEFAULT_KUBERNETES_VERSION, KUBECTL_LAYER_MODULES
from config.worker_shape import WorkerShape, derive_worker_shape

# Regions that offer inf2 instances (EC2 instance-type offerings, checked 2026-11).
INF2_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-4", "me-central-1",
})
TRN1_REGIONS = frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-north-1", "ap-northeast-1", "ap-south-1"})

DEFAULT_MODEL_ID = DEFAULT_CLUSTER_MODEL.model_id
# The commit of DEFAULT_MODEL_ID every worker downloads: a moved branch can never change what is served.
# 53346005...: the repository's head commit, as recorded by independent reproductions (its weight
# shards' SHA-256 match meta-llama/Meta-Llama-3-8B-Instruct@8afb486c). Change it together with model_id.
DEFAULT_MODEL_REVISION = "53346005fb0ef11d3b6a83b12c895cca40156b6c"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and what is allowed."""


@dataclass(frozen=True)
class PipelineConfig:
    """Where the CodePipeline takes its source from (used by the pipeline stack only)."""
    connection_arn: str
    repository: str  # "owner/name"
    branch: str = "main"
    account: str | None = None
    region: str = "us-east-1"


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    region: str
    availability_zones: tuple[str, ...]
    account: str | None = None  # None: environment-agnostic account (the deploying credentials')
    cluster_name: str = default_cluster_name()
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    vpc_cidr: str = "10.1.0.0/16"
    # The blueprint's secondary range: pods get IPs from 100.64.0.0/16 (VPC CNI custom networking),
    # so a few busy nodes cannot exhaust the primary range.
    secondary_cidr: str = "100.64.0.0/16"
    # Roles given cluster-admin access entries. Each is a role ARN, or a role name (optionally with a
    # path, "ops/Admin") resolved in the account the environment deploys into, so the defaults below
    # stay valid offline and in every account. Kept here (not only as `-c admin_role_arns=`): the
    # pipeline and every later deploy synthesize from this file, and an access entry missing from the
    # template is deleted. A deployable environment needs at least one (validate() says so).
    admin_role_arns: tuple[str, ...] = ()
    # Public endpoint limited to these CIDRs, plus the private endpoint. Empty: private endpoint only.
    # Here for the same reason: a CIDR given only as `-c endpoint_public_cidrs=` is removed by the next
    # deploy without it and by every pipeline deploy.
    endpoint_public_cidrs: tuple[str, ...] = ()
    accelerator_preset: str = DEFAULT_PRESET
    preset_overrides: Mapping[str, Any] = field(default_factory=dict)
    model_id: str = DEFAULT_MODEL_ID
    # A full 40-hex commit of model_id on the Hugging Face Hub (never a branch or tag).
    model_revision: str = DEFAULT_MODEL_REVISION
    # Overrides of the per-request limits derived from the preset (config/request_limits.py), by name.
    request_limits: Mapping[str, int] = field(default_factory=dict)
    # The endpoint's named API keys (one per consuming team or tool), each its own Secrets Manager
    # secret and optionally rate-limited: ApiKeySpec("team-a", requests_per_minute=600). The platform's
    # own consumers (Open WebUI, the smoke test) must stay in the list. Rotation: docs/security.md.
    api_keys: tuple[ApiKeySpec, ...] = DEFAULT_API_KEYS
    min_replicas: int = 1
    max_replicas: int = 3
    core_instance_types: tuple[str, ...] = ("m6i.xlarge",)
    core_nodes: int = 2
    # Optional Secrets Manager secret holding the Hugging Face token (the default model is ungated).
    hf_token_secret_name: str | None = None
    ttft_p95_alarm_ms: int = 2000
    alarm_email: str | None = None
    # Days CloudWatch keeps every log group the app creates (a value CloudWatch Logs accepts).
    log_retention_days: int = 30
    # --- The API behind an ALB (issue 13; docs/connecting.md) ---
    # On by default: an HTTPS-only ALB (AWS Load Balancer Controller) in front of the serve Service.
    alb_enabled: bool = True
    # The listener's ACM certificate, one of: an ACM certificate ARN in the environment's region, or
    # the name of an SSM String parameter holding that ARN (read by CloudFormation at deploy time, so the
    # template stays account-free and synthesizes offline). With the ALB on, one is required; the ARN wins.
    alb_certificate_arn: str | None = None
    alb_certificate_parameter: str | None = None
    # Internal by default: reachable from the VPC and from these CIDRs (peered networks, VPN, office).
    alb_allowed_cidrs: tuple[str, ...] = ()
    # Internet-facing: an explicit opt-in, which always adds an AWS WAF web ACL with a per-IP rate-based rule.
    alb_internet_facing: bool = False
    alb_waf_requests_per_5min: int = DEFAULT_WAF_REQUESTS_PER_5MIN
    # Optional DNS: a Route 53 hosted zone of the environment's account (its id and name). external-dns
    # writes alias records to the ALB into it for api_hostname and webui_oidc.hostname, and no other zone.
    dns_hosted_zone_id: str | None = None
    dns_zone_name: str | None = None
    api_hostname: str | None = None
    # Open WebUI on the ALB behind OIDC (config/exposure.py WebUiOidc). None: port-forward only.
    webui_oidc: WebUiOidc | None = None

    # Resolved once per config object (cached_property writes the instance's __dict__, which a frozen
    # dataclass allows; dataclasses.replace makes a new object, so a changed field is never stale).
    @cached_property
    def preset(self) -> AcceleratorPreset:
        return resolve_preset(self.accelerator_preset, dict(self.preset_overrides), self.model)

    @cached_property
    def model(self) -> KnownModel:
        """model_id's row of config/models.py: its tool-call parser, context and sizes."""
        return known_model(self.model_id, device="neuron")

    @cached_property
    def worker_shape(self) -> WorkerShape:
        """The worker every consumer sizes from (NodePools, RayService, serve args, cost, cold start)."""
        return derive_worker_shape(self.preset, self.min_replicas, self.max_replicas)

    @cached_property
    def limits(self) -> RequestLimits:
        """Per-request limits: derived from the preset's engine shape, then request_limits on top."""
        p = self.preset
        return derive_request_limits(p.max_num_seqs, p.max_model_len, self.request_limits)

    @property
    def alb_certificate(self) -> str | None:
        """What the Ingress's certificate-arn annotation holds: the ARN, or a CloudFormation dynamic
        reference to the SSM parameter holding it (resolved at deploy time)."""
        if self.alb_certificate_arn:
            return self.alb_certificate_arn
        return ssm_certificate_reference(self.alb_certificate_parameter) if self.alb_certificate_parameter else None

    @property
    def alb_inbound_cidrs(self) -> tuple[str, ...]:
        """Who may open a connection to the ALB: the VPC and alb_allowed_cidrs; an internet-facing ALB
        with no CIDRs listed: anyone (its WAF rate limit and the API key still apply)."""
        if self.alb_internet_facing and not self.alb_allowed_cidrs:
            return ("0.0.0.0/0",)
        return (self.vpc_cidr, *self.alb_allowed_cidrs)

    @property
    def alb_source_cidr(self) -> str | None:
        """Where the ALB's connections to the pods come from: its ENIs in the VPC's primary subnets (the
        nodes and pods sit in the secondary range); None without an ALB."""
        return self.vpc_cidr if self.alb_enabled else None

    @property
    def alb_hostnames(self) -> tuple[str, ...]:
        """The DNS names the ALB answers on by name: api_hostname and Open WebUI's host, if set."""
        return tuple(h for h in (self.api_hostname, self.webui_oidc.hostname if self.webui_oidc else None) if h)

    @property
    def webui_url(self) -> str | None:
        """Open WebUI's address behind the ALB (OIDC), or None: port-forward only."""
        return self.webui_oidc.base_url if self.webui_oidc else None

    @property
    def stack_prefix(self) -> str:
        return project.stack_prefix(self.name)


# The admin role name the shipped environments use: replace it (or list ARNs) with your admins' role.
DEFAULT_ADMIN_ROLE_NAME = "Admin"

ENVIRONMENTS: dict[str, EnvironmentConfig] = {
    "dev": EnvironmentConfig(
        name="dev",
        region="us-east-1",
        availability_zones=("us-east-1a", "us-east-1b", "us-east-1c"),
        cluster_name=default_cluster_name("dev"),
        # The role your platform admins assume in the dev account (a name: resolved in that account).
        # EKS refuses an access entry for a role that does not exist, naming it, at deploy time.
        admin_role_arns=(DEFAULT_ADMIN_ROLE_NAME,),
        max_replicas=2,
        # Put your ACM certificate's ARN in this SSM parameter of the dev account before deploying
        # (docs/connecting.md); CloudFormation fails naming the parameter if it is missing.
        alb_certificate_parameter=f"/{project.PROJECT_SLUG}/dev/alb-certificate-arn",
    ),
    "prod": EnvironmentConfig(
        name="prod",
        region="us-west-2",
        availability_zones=("us-west-2a", "us-west-2b", "us-west-2c"),
        cluster_name=default_cluster_name("prod"),
        vpc_cidr="10.2.0.0/16",
        admin_role_arns=(DEFAULT_ADMIN_ROLE_NAME,),
        accelerator_preset="inf2.48xlarge",
        core_nodes=3,
        max_replicas=6,
        ttft_p95_alarm_ms=1500,
        log_retention_days=90,
        alb_certificate_parameter=f"/{project.PROJECT_SLUG}/prod/alb-certificate-arn",
    ),
}
DEFAULT_ENV = "dev"

# Pipeline source; fill in before `cdk deploy` of the pipeline stack (see README).
PIPELINE = PipelineConfig(
    connection_arn="arn:aws:codeconnections:us-east-1:111111111111:connection/00000000-0000-0000-0000-000000000000",
    repository=f"example-org/{PLATFORM_NAME}",
    # The pipeline's (tooling) account. CodePipeline's cross-region support needs an explicit one;
    # environments without an account of their own are deployed into this one.
    account="111111111111",
)

# --- validation ----------------------------------------------------------------------------------

_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role(/[\w+=,.@-]+)+$")
# An IAM role name (1-64 characters) with an optional path, e.g. "Admin" or "ops/oncall/Admin".
_ROLE_NAME = re.compile(r"^([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
# Retention periods CloudWatch Logs accepts (PutRetentionPolicy); 0 (never expire) is deliberately not one.
LOG_RETENTION_DAYS = frozenset({1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                                2192, 2557, 2922, 3288, 3653})


def _cidr(field_name: str, value: str, *, max_prefix: int = 28) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(f"{field_name}: {value!r} is not a valid IPv4 CIDR like 10.0.0.0/16 ({exc})") from None
    if net.prefixlen > max_prefix:
        raise ConfigError(f"{field_name}: {value} is too small; use a prefix of /{max_prefix} or shorter")
    return net


def validate(cfg: EnvironmentConfig) -> EnvironmentConfig:
    if not _ENV_NAME.match(cfg.name):
        raise ConfigError(f"name: {cfg.name!r} must be lowercase letters, digits and dashes (max 16)")
    if cfg.account is not None and not _ACCOUNT.match(cfg.account):
        raise ConfigError(f"account: {cfg.account!r} must be a 12-digit AWS account id, or None")
    if cfg.region not in INF2_REGIONS:
        raise ConfigError(f"region: {cfg.region!r} has no inf2 instances; allowed: {sorted(INF2_REGIONS)}")
    if len(cfg.availability_zones) < 2:
        raise ConfigError("availability_zones: give at least 2 availability zones (EKS needs 2)")
    for az in cfg.availability_zones:
        if not (az.startswith(cfg.region) and len(az) == len(cfg.region) + 1):
            raise ConfigError(f"availability_zones: {az!r} is not a zone of region {cfg.region} (e.g. {cfg.region}a)")
    if not _CLUSTER_NAME.match(cfg.cluster_name):
        raise ConfigError(f"cluster_name: {cfg.cluster_name!r} must be 1-100 letters, digits, '-' or '_'")
    if cfg.kubernetes_version not in KUBECTL_LAYER_MODULES:
        raise ConfigError(
            f"kubernetes_version: {cfg.kubernetes_version!r} is not supported; allowed: {sorted(KUBECTL_LAYER_MODULES)}"
        )
    vpc = _cidr("vpc_cidr", cfg.vpc_cidr, max_prefix=20)
    secondary = _cidr("secondary_cidr", cfg.secondary_cidr, max_prefix=20)
    if vpc.overlaps(secondary):
        raise ConfigError(f"secondary_cidr: {cfg.secondary_cidr} overlaps vpc_cidr {cfg.vpc_cidr}")
    for cidr in cfg.endpoint_public_cidrs:
        net = _cidr("endpoint_public_cidrs", cidr, max_prefix=32)
        if net.prefixlen == 0:
            raise ConfigError("endpoint_public_cidrs: 0.0.0.0/0 opens the API server to the internet; list your CIDRs")
    if not cfg.admin_role_arns:
        raise ConfigError(
            f"admin_role_arns: environment {cfg.name!r} has no admin role, so nobody could reach its cluster; set "
            f"ENVIRONMENTS[{cfg.name!r}].admin_role_arns in config/environments.py to role ARNs or role names of "
            "the deploying account, e.g. ('Admin',) (-c admin_role_arns=... overrides it for one hand deploy)"
        )
    for arn in cfg.admin_role_arns:
        if arn.startswith("arn:") and not _ROLE_ARN.match(arn):
            raise ConfigError(f"admin_role_arns: {arn!r} is not an IAM role ARN like arn:aws:iam::123456789012:role/Admin")
        if not arn.startswith("arn:") and not _ROLE_NAME.match(arn):
            raise ConfigError(f"admin_role_arns: {arn!r} is neither an IAM role ARN like "
                              "arn:aws:iam::123456789012:role/Admin nor a role name like Admin")
    try:
        cfg.model  # noqa: B018 - before the preset: its HBM and context checks read the model's row
        preset = cfg.preset
    except (UnknownModelError, PresetError) as exc:
        raise ConfigError(str(exc)) from None
    if preset.family == "trn1" and cfg.region not in TRN1_REGIONS:
        raise ConfigError(
            f"accelerator_preset: {preset.instance_type} is not offered in {cfg.region}; trn1 regions: {sorted(TRN1_REGIONS)}"
        )
    if not (1 <= cfg.min_replicas <= cfg.max_replicas):
        raise ConfigError(
            f"min_replicas/max_replicas: need 1 <= min_replicas <= max_replicas, got {cfg.min_replicas}/{cfg.max_replicas}"
        )
    # Derived here, once the replica bounds are known good: every loaded config carries its worker shape.
    cfg.worker_shape  # noqa: B018
    if cfg.core_nodes < 2:
        raise ConfigError("core_nodes: use at least 2 core nodes (system pods and the Ray head need room)")
    if not re.fullmatch(r"[0-9a-f]{40}", cfg.model_revision):
        raise ConfigError(f"model_revision: {cfg.model_revision!r} must be a full 40-hex commit of {cfg.model_id} "
                          "on the Hugging Face Hub (a branch or tag can move under a running service)")
    if cfg.model_id != DEFAULT_MODEL_ID and cfg.model_revision == DEFAULT_MODEL_REVISION:
        raise ConfigError(f"model_revision: still the commit of {DEFAULT_MODEL_ID}; set the 40-hex commit of "
                          f"{cfg.model_id} you mean to serve (its repository's commit history on the Hub)")
    try:
        cfg.limits  # noqa: B018
    except RequestLimitsError as exc:
        raise ConfigError(str(exc)) from None
    _validate_api_keys(cfg.api_keys)
    if cfg.ttft_p95_alarm_ms <= 0:
        raise ConfigError("ttft_p95_alarm_ms: must be a positive number of milliseconds")
    if cfg.log_retention_days not in LOG_RETENTION_DAYS:
        raise ConfigError(f"log_retention_days: {cfg.log_retention_days} is not a CloudWatch Logs retention; "
                          f"allowed: {sorted(LOG_RETENTION_DAYS)}")
    if cfg.alarm_email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", cfg.alarm_email):
        raise ConfigError(f"alarm_email: {cfg.alarm_email!r} is not an e-mail address; use name@example.com or None")
    _validate_alb(cfg, vpc)
    _validate_exposure(cfg)
    return cfg


def _validate_exposure(cfg: EnvironmentConfig) -> None:
    """DNS names and Open WebUI's OIDC, both of which ride on the ALB."""
    if not cfg.alb_enabled and (cfg.webui_oidc or cfg.api_hostname or cfg.dns_hosted_zone_id):
        field = "webui_oidc" if cfg.webui_oidc else "api_hostname" if cfg.api_hostname else "dns_hosted_zone_id"
        raise ConfigError(f"{field}: needs alb_enabled=True (the names and the OIDC login are the ALB's)")
    try:
        check_dns(cfg.dns_hosted_zone_id, cfg.dns_zone_name, cfg.api_hostname)
        if cfg.webui_oidc is not None:
            if not isinstance(cfg.webui_oidc, WebUiOidc):
                raise ExposureError(f"webui_oidc: {cfg.webui_oidc!r} must be a config.exposure.WebUiOidc(...) or None")
            check_webui_oidc(cfg.webui_oidc, cfg.dns_zone_name, cfg.api_hostname)
        if cfg.dns_hosted_zone_id and not cfg.alb_hostnames:
            raise ExposureError("dns_hosted_zone_id: no name to write into it; set api_hostname and/or "
                                "webui_oidc.hostname, or leave the zone unset")
    except ExposureError as exc:
        raise ConfigError(str(exc)) from None


_ACM_ARN = re.compile(r"^arn:aws(-[a-z]+)*:acm:(?P<region>[a-z]{2}(-[a-z]+)+-\d):\d{12}:certificate/[0-9a-f-]{36}$")
_SSM_NAME = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")


def _validate_alb(cfg: EnvironmentConfig, vpc: ipaddress.IPv4Network) -> None:
    if not cfg.alb_enabled:
        if cfg.alb_internet_facing:
            raise ConfigError("alb_internet_facing: needs alb_enabled=True (there is no ALB to make public)")
        return
    if not (cfg.alb_certificate_arn or cfg.alb_certificate_parameter):
        raise ConfigError(
            f"alb_certificate_arn: environment {cfg.name!r} puts the API behind an HTTPS ALB but names no "
            f"certificate; set ENVIRONMENTS[{cfg.name!r}].alb_certificate_arn to an ACM certificate ARN in "
            f"{cfg.region} (or alb_certificate_parameter to an SSM parameter holding it), or alb_enabled=False")
    if cfg.alb_certificate_arn:
        m = _ACM_ARN.match(cfg.alb_certificate_arn)
        if not m:
            raise ConfigError(f"alb_certificate_arn: {cfg.alb_certificate_arn!r} is not an ACM certificate ARN like "
                              f"arn:aws:acm:{cfg.region}:123456789012:certificate/<uuid>")
        if m.group("region") != cfg.region:
            raise ConfigError(f"alb_certificate_arn: the certificate is in {m.group('region')}; an ALB in "
                              f"{cfg.region} needs an ACM certificate of {cfg.region}")
    if cfg.alb_certificate_parameter and not _SSM_NAME.match(cfg.alb_certificate_parameter):
        raise ConfigError(f"alb_certificate_parameter: {cfg.alb_certificate_parameter!r} is not an SSM parameter "
                          f"name like /{project.PROJECT_SLUG}/dev/alb-certificate-arn (absolute, letters, digits, _.-/)")
    for cidr in cfg.alb_allowed_cidrs:
        net = _cidr("alb_allowed_cidrs", cidr, max_prefix=32)
        if net.prefixlen == 0 and not cfg.alb_internet_facing:
            raise ConfigError("alb_allowed_cidrs: 0.0.0.0/0 on an internal ALB; list your networks' CIDRs")
        if net.subnet_of(vpc):
            raise ConfigError(f"alb_allowed_cidrs: {cidr} is inside vpc_cidr {cfg.vpc_cidr}, which is always allowed")
    rate = cfg.alb_waf_requests_per_5min
    if isinstance(rate, bool) or not isinstance(rate, int) or not WAF_RATE_LIMIT_MIN <= rate <= WAF_RATE_LIMIT_MAX:
        raise ConfigError(f"alb_waf_requests_per_5min: {rate!r} must be an integer from {WAF_RATE_LIMIT_MIN} "
                          f"to {WAF_RATE_LIMIT_MAX} (AWS WAF rate-based rule limit per IP per 5 minutes)")


def check_api_key_names(names: list[str]) -> None:
    """The named keys' names: valid, unique, and the platform's own consumers among them."""
    bad = [n for n in names if not isinstance(n, str) or not re.match(KEY_NAME_PATTERN, n)]
    if bad:
        raise ConfigError(f"api_keys: names {bad} must be 1-32 lowercase letters, digits and '-' "
                          f"({KEY_NAME_PATTERN}): each is a Secret data key and a file name")
    if len(set(names)) != len(names):
        raise ConfigError(f"api_keys: duplicate names in {names}")
    missing = [n for n in REQUIRED_KEY_NAMES if n not in names]
    if missing:
        raise ConfigError(f"api_keys: {missing} missing; the platform's own consumers (Open WebUI, the smoke test) "
                          f"need their keys: keep {list(REQUIRED_KEY_NAMES)} in the list")


def _validate_api_keys(specs: tuple[ApiKeySpec, ...]) -> None:
    if not all(isinstance(s, ApiKeySpec) for s in specs):
        raise ConfigError("api_keys: give a tuple of config.secrets.ApiKeySpec, e.g. (ApiKeySpec('team-a', 600), ...)")
    check_api_key_names([s.name for s in specs])
    for s in specs:
        rpm = s.requests_per_minute
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
            raise ConfigError(f"api_keys: {s.name}.requests_per_minute={rpm!r} must be a positive integer or None")


# Context keys (`cdk synth -c KEY=VALUE`) that override a field of the chosen environment.
_OVERRIDES = {
    "account": str,
    "region": str,
    "accelerator_preset": str,
    "model_id": str,
    "model_revision": str,
    "kubernetes_version": str,
    "endpoint_public_cidrs": lambda v: tuple(c.strip() for c in v.split(",") if c.strip()),
    "admin_role_arns": lambda v: tuple(a.strip() for a in v.split(",") if a.strip()),
    "availability_zones": lambda v: tuple(a.strip() for a in v.split(",") if a.strip()),
    "alb_certificate_arn": str,
    "alb_allowed_cidrs": lambda v: tuple(c.strip() for c in v.split(",") if c.strip()),
    "alb_internet_facing": lambda v: _flag("alb_internet_facing", v),
}


def _flag(field_name: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{field_name}: {value!r} is not true or false")


_CONNECTION_ARN = re.compile(r"^arn:aws(-[a-z]+)*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def validate_pipeline(p: PipelineConfig) -> PipelineConfig:
    """Check the pipeline's source and home before the PipelineStack is built."""
    if not _CONNECTION_ARN.match(p.connection_arn):
        raise ConfigError(
            f"PIPELINE.connection_arn: {p.connection_arn!r} is not a CodeConnections ARN like "
            "arn:aws:codeconnections:us-east-1:123456789012:connection/<uuid> (create one in the console)"
        )
    if not _REPOSITORY.match(p.repository):
        raise ConfigError(f"PIPELINE.repository: {p.repository!r} must be owner/name")
    if not p.branch or " " in p.branch:
        raise ConfigError(f"PIPELINE.branch: {p.branch!r} must be a branch name")
    if p.account is None or not _ACCOUNT.match(p.account):
        raise ConfigError(f"PIPELINE.account: {p.account!r} must be the 12-digit account the pipeline lives in")
    if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", p.region):
        raise ConfigError(f"PIPELINE.region: {p.region!r} is not an AWS region like us-east-1")
    return p


def admin_role_arn(entry: str, *, partition: str, account: str) -> str:
    """The ARN of an admin_role_arns entry: an ARN as given, a role name in `account` (may be a token)."""
    if entry.startswith("arn:"):
        return entry
    return f"arn:{partition}:iam::{account}:role/{entry}"


def load_config(context: Mapping[str, Any] | None = None) -> EnvironmentConfig:
    """Return the validated environment selected by `-c env=NAME`, with `-c field=value` overrides."""
    context = dict(context or {})
    name = context.get("env") or DEFAULT_ENV
    if name not in ENVIRONMENTS:
        raise ConfigError(f"env: unknown environment {name!r}; allowed: {sorted(ENVIRONMENTS)}")
    changes = {key: parse(str(context[key])) for key, parse in _OVERRIDES.items() if context.get(key) not in (None, "")}
    # Always a fresh object: the preset and worker shape resolve against the presets as they are now.
    return validate(replace(ENVIRONMENTS[name], **changes))


def all_environments() -> list[EnvironmentConfig]:
    return [validate(c) for c in ENVIRONMENTS.values()]


__all__ = [
    "ConfigError", "EnvironmentConfig", "PipelineConfig", "ENVIRONMENTS", "PIPELINE", "load_config",
    "all_environments", "validate", "validate_pipeline", "INF2_REGIONS", "admin_role_arn",
    "DEFAULT_ADMIN_ROLE_NAME",
]

"""Who reaches what through the ALB beyond the API (issue 13 #3, #4): Open WebUI behind OIDC, and DNS names.

Open WebUI is published only with OpenID Connect at two layers, both against the same IdP client:
- the ALB authenticates every request to the Open WebUI host first (listener rule action
  authenticate-oidc): nobody without an IdP session reaches Open WebUI at all;
- Open WebUI then signs the user in with its own OIDC client (the IdP session makes it one redirect,
  OAUTH_AUTO_REDIRECT), creating the account from the IdP's claims and taking the role from the IdP's
  groups (ENABLE_OAUTH_ROLE_MANAGEMENT): admins and users are who the IdP says, no signup, no passwords.
  Open WebUI checks the IdP's tokens itself, so a request that bypasses the ALB gains nothing.

DNS: external-dns (platform_constructs/addons/external_dns.py) writes Route 53 alias records for the
hostnames below into one hosted zone, from the Ingresses' annotations; the ALB's DNS name exists only once
the controller has made it, which is why CloudFormation cannot write the record itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 1123 host name, at least two labels, lower case (Route 53 and the IdP's redirect URIs compare it so).
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d{1,5})?(/[\w.~%!$&'()*+,;=:@/-]*)?$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
# A Secrets Manager secret name (1-512 of letters, digits and /_+=.@-) in the environment's account and region.
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
# Open WebUI splits OAUTH_ALLOWED_ROLES/OAUTH_ADMIN_ROLES on "," (OAUTH_ROLES_SEPARATOR): no comma in a group.
_GROUP = re.compile(r"^[^,\s][^,]{0,254}$")
# The ALB's limit on an authentication session (ELB API AuthenticateOidcActionConfig.SessionTimeout).
SESSION_TIMEOUT_MAX_S = 604800
DEFAULT_SESSION_TIMEOUT_S = 8 * 3600  # a working day: the IdP is asked again every morning

# The callback paths the IdP client must allow (both on the Open WebUI host):
ALB_CALLBACK_PATH = "/oauth2/idpresponse"  # the ALB's fixed redirect URI (ELB User Guide, "Authenticate users")
WEBUI_CALLBACK_PATH = "/oauth/oidc/login/callback"  # open-webui 0.12.4 main.py oauth_login_callback, provider "oidc"
OIDC_SCOPES = "openid email profile"
# The Secrets Manager secret's JSON fields and the Kubernetes Secret's keys (the controller's fixed names,
# aws-load-balancer-controller v3.5.0 docs/guide/ingress/annotations.md auth-idp-oidc).
CLIENT_ID_FIELD, CLIENT_SECRET_FIELD = "client_id", "client_secret"
K8S_CLIENT_ID_KEY, K8S_CLIENT_SECRET_KEY = "clientID", "clientSecret"


# external-dns's TXT registry names a record of type T at <host> `<t>-<host>` (kubernetes-sigs/external-dns
# v0.21.0 registry/mapper/mapper.go ToTXTName): the names it writes besides the hosts themselves.
REGISTRY_TXT_TYPES = ("a", "aaaa", "cname")


def hosted_zone_arn(zone_id: str) -> str:
    """A Route 53 hosted zone's ARN (global: no region or account in it)."""
    return f"arn:aws:route53:::hostedzone/{zone_id}"


def record_names(hostnames) -> list[str]:
    """Every record name external-dns writes for `hostnames`: each host and its TXT registry names (the
    only names its role may change, and the only ones the destroy-time cleanup may delete)."""
    return sorted({n for host in hostnames for n in (host, *(f"{t}-{host}" for t in REGISTRY_TXT_TYPES))})


class ExposureError(ValueError):
    """An Open WebUI OIDC or DNS setting is wrong; the message names the field."""


@dataclass(frozen=True)
class WebUiOidc:
    """Open WebUI on `hostname` behind the ALB, for the IdP's users in `user_groups` and `admin_groups`.

    The four endpoints are the IdP's discovery document's (`<issuer>/.well-known/openid-configuration`:
    authorization_endpoint, token_endpoint, userinfo_endpoint); the ALB needs them spelled out and
    synthesis stays offline. The client's id and secret live in Secrets Manager, as a JSON secret
    {"client_id": "...", "client_secret": "..."} named `client_secret_name` (never in this file)."""
    hostname: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    user_info_endpoint: str
    client_secret_name: str
    admin_groups: tuple[str, ...]
    user_groups: tuple[str, ...]
    groups_claim: str = "groups"  # Cognito: "cognito:groups"; Entra ID: "roles" or "groups"
    provider_name: str = "SSO"  # the sign-in button's label
    session_timeout_s: int = DEFAULT_SESSION_TIMEOUT_S

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def base_url(self) -> str:
        return f"https://{self.hostname}"

    def callback_urls(self) -> tuple[str, str]:
        """What the IdP client must list as allowed redirect URIs."""
        return self.base_url + ALB_CALLBACK_PATH, self.base_url + WEBUI_CALLBACK_PATH


def check_hostname(field: str, value: str, zone_name: str | None) -> None:
    if not isinstance(value, str) or not _HOSTNAME.match(value):
        raise ExposureError(f"{field}: {value!r} is not a lower-case DNS host name like llm.dev.example.com")
    if zone_name and not (value == zone_name or value.endswith("." + zone_name)):
        raise ExposureError(f"{field}: {value} is not inside dns_zone_name {zone_name}; external-dns writes "
                            "only that zone's records")


def check_dns(zone_id: str | None, zone_name: str | None, api_hostname: str | None) -> None:
    if (zone_id is None) != (zone_name is None):
        raise ExposureError("dns_hosted_zone_id/dns_zone_name: set both (the zone's id and its name, e.g. "
                            "Z0123456789ABCDEFGHIJ and dev.example.com) or neither")
    if zone_id is None:
        if api_hostname:
            raise ExposureError("api_hostname: needs dns_hosted_zone_id and dns_zone_name (the Route 53 zone "
                                "its alias record goes into)")
        return
    if not _ZONE_ID.match(zone_id):
        raise ExposureError(f"dns_hosted_zone_id: {zone_id!r} is not a Route 53 hosted zone id like Z0123456789ABCDEFGHIJ")
    if not _HOSTNAME.match(zone_name):
        raise ExposureError(f"dns_zone_name: {zone_name!r} is not a lower-case DNS name like dev.example.com "
                            "(no trailing dot)")
    if api_hostname is not None:
        check_hostname("api_hostname", api_hostname, zone_name)


def check_webui_oidc(oidc: WebUiOidc, zone_name: str | None, api_hostname: str | None) -> None:
    field = "webui_oidc"
    check_hostname(f"{field}.hostname", oidc.hostname, zone_name)
    if oidc.hostname == api_hostname:
        raise ExposureError(f"{field}.hostname: {oidc.hostname} is also api_hostname; Open WebUI needs a host "
                            "of its own (its ALB rule authenticates every request, API clients cannot)")
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "user_info_endpoint"):
        value = getattr(oidc, name)
        if not isinstance(value, str) or not _HTTPS_URL.match(value):
            raise ExposureError(f"{field}.{name}: {value!r} is not an https URL; copy it from the IdP's "
                                "discovery document, <issuer>/.well-known/openid-configuration")
    if not _SECRET_NAME.match(oidc.client_secret_name or ""):
        raise ExposureError(f"{field}.client_secret_name: {oidc.client_secret_name!r} is not a Secrets Manager "
                            "secret name (of the environment's account and region; its value: {\"client_id\": ..., \"client_secret\": ...})")
    if not oidc.admin_groups:
        raise ExposureError(f"{field}.admin_groups: name the IdP group(s) whose members are Open WebUI admins; "
                            "with OIDC there is no password login to fall back on")
    for name in ("admin_groups", "user_groups"):
        groups = getattr(oidc, name)
        if isinstance(groups, str) or not all(isinstance(g, str) and _GROUP.match(g) for g in groups):
            raise ExposureError(f"{field}.{name}: {groups!r} must be a tuple of group names without commas")
    if not oidc.groups_claim or "," in oidc.groups_claim:
        raise ExposureError(f"{field}.groups_claim: {oidc.groups_claim!r} must name the ID token / userinfo "
                            "claim that lists the user's groups (e.g. groups, cognito:groups)")
    if not isinstance(oidc.session_timeout_s, int) or not 1 <= oidc.session_timeout_s <= SESSION_TIMEOUT_MAX_S:
        raise ExposureError(f"{field}.session_timeout_s: {oidc.session_timeout_s!r} must be 1-{SESSION_TIMEOUT_MAX_S} "
                            "seconds (the ALB's limit, 7 days)")

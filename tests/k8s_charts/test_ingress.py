"""The API's ALB objects (issue 13): valid against the pinned controller's documented surface, internal
and HTTPS-only by default, public only with WAF, and the NetworkPolicy hole they need and no more."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from config import names
from config.environments import validate
from config.ingress import ALB_TLS_POLICY, SERVE_HEALTH_PATH, alb_idle_timeout_s
from tests.support.alb_schemas import ingress_class_params_errors, unknown_annotations
from config.secrets import WEBUI_OIDC_SECRET
from tests.support.charts import OIDC, OIDC_DNS, VARIANTS, docs, find, synth

WAF_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0123abcd-0123-0123-0123-0123456789ab"


@pytest.fixture(scope="module")
def dev():
    return synth(VARIANTS["env-dev"])


@pytest.fixture(scope="module")
def public():
    cfg = validate(dataclasses.replace(VARIANTS["env-dev"], alb_internet_facing=True,
                                       alb_allowed_cidrs=("203.0.113.0/24",)))
    return synth(cfg, waf_acl_arn=WAF_ARN)


def _params(files):
    return find(files, "IngressClassParams")["spec"]


def test_every_alb_object_is_valid_and_its_annotations_documented(dev, public):
    for files in (dev, public):
        objs = [d for d in docs(files) if d["kind"] in ("Ingress", "IngressClass", "IngressClassParams",
                                                         "TargetGroupBinding")]
        assert {d["kind"] for d in objs} == {"Ingress", "IngressClass", "IngressClassParams"}
        for d in objs:
            assert unknown_annotations(d) == [], d["metadata"]["name"]
        assert ingress_class_params_errors(find(files, "IngressClassParams")) == []


def test_an_unknown_annotation_fails(dev):
    ingress = copy.deepcopy(find(dev, "Ingress"))
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/ssl-polcy"] = ALB_TLS_POLICY
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.my-action"] = "{}"  # a documented family
    assert unknown_annotations(ingress) == ["alb.ingress.kubernetes.io/ssl-polcy"]


def test_the_crd_schema_bites(dev):
    params = copy.deepcopy(find(dev, "IngressClassParams"))
    params["spec"]["scheme"] = "public"
    params["spec"]["sslPolice"] = ALB_TLS_POLICY
    errors = ingress_class_params_errors(params)
    assert any("scheme" in e for e in errors) and any("sslPolice" in e for e in errors)


def test_internal_https_only_by_default(dev):
    cfg = VARIANTS["env-dev"]
    spec = _params(dev)
    assert spec["scheme"] == "internal"
    assert spec["sslPolicy"] == ALB_TLS_POLICY == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert spec["certificateArn"] == ["{{resolve:ssm:/llama3-inf2/dev/alb-certificate-arn}}"]
    assert spec["sslRedirectPort"] == "443"
    assert spec["inboundCIDRs"] == [cfg.vpc_cidr]
    assert spec["targetType"] == "ip"
    assert "wafv2AclArn" not in spec
    # Only Ingresses of the vllm namespace may use the class.
    assert spec["namespaceSelector"] == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [names.VLLM_NAMESPACE]}]}
    attrs = {a["key"]: a["value"] for a in spec["loadBalancerAttributes"]}
    assert attrs["deletion_protection.enabled"] == "false"
    assert int(attrs["idle_timeout.timeout_seconds"]) == alb_idle_timeout_s(cfg.limits)


def test_idle_timeout_covers_the_longest_unstreamed_completion():
    cfg = VARIANTS["env-dev"]
    assert alb_idle_timeout_s(cfg.limits) >= cfg.limits.max_max_tokens / 5 + 60
    assert 60 <= alb_idle_timeout_s(cfg.limits) <= 4000


def test_ingress_targets_the_serve_service_with_health_checks(dev):
    ingress = find(dev, "Ingress")
    a = {k.split("/", 1)[1]: v for k, v in ingress["metadata"]["annotations"].items()}
    assert json.loads(a["listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert a["healthcheck-path"] == SERVE_HEALTH_PATH == "/health"
    assert ingress["spec"]["ingressClassName"] == names.ALB_INGRESS_CLASS
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": names.SERVE_SERVICE_NAME, "port": {"number": names.SERVE_PORT}}
    assert ingress["metadata"]["namespace"] == names.VLLM_NAMESPACE


def test_internet_facing_carries_the_waf_acl(public):
    spec = _params(public)
    assert spec["scheme"] == "internet-facing"
    assert spec["wafv2AclArn"] == WAF_ARN
    assert spec["inboundCIDRs"] == [VARIANTS["env-dev"].vpc_cidr, "203.0.113.0/24"]


def test_internet_facing_without_waf_is_refused():
    cfg = validate(dataclasses.replace(VARIANTS["env-dev"], alb_internet_facing=True))
    with pytest.raises(ValueError, match="WAF"):
        synth(cfg)


def test_no_alb_objects_and_no_cidr_peer_when_disabled():
    files = synth(validate(dataclasses.replace(VARIANTS["env-dev"], alb_enabled=False)))
    assert not [d for d in docs(files) if d["kind"] in ("Ingress", "IngressClass", "IngressClassParams")]
    assert "ipBlock" not in json.dumps(docs(files))


def test_the_alb_cidr_reaches_the_serve_port_only(dev):
    cfg = VARIANTS["env-dev"]
    blocks = [(p["metadata"]["name"], rule) for p in docs(dev) if p["kind"] == "NetworkPolicy"
              for rule in p["spec"].get("ingress", []) if any("ipBlock" in peer for peer in rule.get("from", []))]
    assert [(name, rule["from"], rule["ports"]) for name, rule in blocks] == [
        ("ray-serve-port", [{"ipBlock": {"cidr": cfg.vpc_cidr}}], [{"port": names.SERVE_PORT, "protocol": "TCP"}])]
    # The pods and nodes are in the secondary range, so the VPC CIDR peer is not "every pod".
    assert not cfg.vpc_cidr == cfg.secondary_cidr


# --- Open WebUI behind OIDC and DNS names (issue 13 #3, #4) -------------------------------------------

@pytest.fixture(scope="module")
def exposed():
    return synth(OIDC_DNS)


def _ingress(files, name):
    return find(files, "Ingress", name)


def _annotations(obj) -> dict[str, str]:
    return {k.split("/", 1)[1]: v for k, v in obj["metadata"]["annotations"].items()}


def test_oidc_objects_are_valid_and_documented(exposed):
    objs = [d for d in docs(exposed) if d["kind"] in ("Ingress", "IngressClass", "IngressClassParams")]
    assert sorted(d["metadata"]["name"] for d in objs if d["kind"] == "Ingress") == [
        names.WEBUI_INGRESS_NAME, names.API_INGRESS_NAME]
    for d in objs:
        assert unknown_annotations(d) == [], d["metadata"]["name"]
    assert ingress_class_params_errors(find(exposed, "IngressClassParams")) == []


def test_webui_joins_the_api_alb_only_with_oidc(dev, exposed):
    selector = lambda files: _params(files)["namespaceSelector"]["matchExpressions"][0]["values"]  # noqa: E731
    assert selector(dev) == [names.VLLM_NAMESPACE]
    assert selector(exposed) == [names.VLLM_NAMESPACE, names.WEBUI_NAMESPACE]
    assert _params(exposed)["group"] == {"name": names.ALB_INGRESS_GROUP}
    assert not [d for d in docs(dev) if d["kind"] == "Ingress" and d["metadata"]["namespace"] == names.WEBUI_NAMESPACE]
    # Open WebUI's host rule is evaluated before the API's (which matches any host without api_hostname).
    webui, api = _ingress(exposed, names.WEBUI_INGRESS_NAME), _ingress(exposed, names.API_INGRESS_NAME)
    assert int(_annotations(webui)["group.order"]) < int(_annotations(api)["group.order"])


def test_the_alb_authenticates_every_webui_request_with_the_idp(exposed):
    webui = _ingress(exposed, names.WEBUI_INGRESS_NAME)
    a = _annotations(webui)
    assert a["auth-type"] == "oidc" and a["auth-on-unauthenticated-request"] == "authenticate"
    assert json.loads(a["auth-idp-oidc"]) == {
        "issuer": OIDC.issuer, "authorizationEndpoint": OIDC.authorization_endpoint,
        "tokenEndpoint": OIDC.token_endpoint, "userInfoEndpoint": OIDC.user_info_endpoint,
        "secretName": WEBUI_OIDC_SECRET}
    assert a["auth-scope"] == "openid email profile" and a["auth-session-timeout"] == "28800"
    (rule,) = webui["spec"]["rules"]
    assert rule["host"] == OIDC.hostname
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": names.WEBUI_SERVICE_NAME, "port": {"number": names.WEBUI_SERVICE_PORT}}
    # The API keeps its own host (and stays outside the IdP: API clients send keys, not browsers' cookies).
    api = _ingress(exposed, names.API_INGRESS_NAME)
    assert api["spec"]["rules"][0]["host"] == OIDC_DNS.api_hostname
    assert not [k for k in _annotations(api) if k.startswith("auth-")]


def test_the_controller_may_read_the_oidc_secret_and_no_other(exposed):
    role = find(exposed, "Role", "aws-load-balancer-controller-oidc-secret")
    assert role["metadata"]["namespace"] == names.WEBUI_NAMESPACE
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [WEBUI_OIDC_SECRET],
                              "verbs": ["get", "list", "watch"]}]
    binding = find(exposed, "RoleBinding", "aws-load-balancer-controller-oidc-secret")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": names.AWS_LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
                                    "namespace": names.AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE}]


def _webui_env(files) -> dict:
    deployment = find(files, "Deployment", names.WEBUI_SERVICE_NAME)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_webui_signs_users_in_with_the_idp_and_maps_their_groups(dev, exposed):
    env = _webui_env(exposed)
    assert env["OPENID_PROVIDER_URL"] == OIDC.issuer + "/.well-known/openid-configuration"
    assert env["OPENID_REDIRECT_URI"] == f"https://{OIDC.hostname}/oauth/oidc/login/callback"
    assert (env["ENABLE_OAUTH_SIGNUP"], env["ENABLE_SIGNUP"]) == ("true", "false")
    assert (env["ENABLE_PASSWORD_AUTH"], env["ENABLE_LOGIN_FORM"]) == ("false", "false")
    assert (env["WEBUI_SESSION_COOKIE_SECURE"], env["WEBUI_AUTH_COOKIE_SECURE"]) == ("true", "true")
    assert env["ENABLE_OAUTH_ROLE_MANAGEMENT"] == "true" and env["OAUTH_ROLES_CLAIM"] == "cognito:groups"
    assert (env["OAUTH_ADMIN_ROLES"], env["OAUTH_ALLOWED_ROLES"]) == ("llm-admins", "llm-users")
    for name, key in (("OAUTH_CLIENT_ID", "clientID"), ("OAUTH_CLIENT_SECRET", "clientSecret")):
        assert env[name] == {"secretKeyRef": {"name": WEBUI_OIDC_SECRET, "key": key}}
    assert not [k for k in _webui_env(dev) if k.startswith(("OAUTH", "OPENID"))]


def _policy(files, name):
    return find(files, "NetworkPolicy", name)["spec"]


def test_the_alb_reaches_webui_port_only_with_oidc_and_webui_reaches_only_the_idp(dev, exposed):
    cfg = OIDC_DNS
    assert [d for d in docs(dev) if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "webui-from-ingress"] == []
    assert _policy(exposed, "webui-from-ingress")["ingress"] == [
        {"from": [{"ipBlock": {"cidr": cfg.vpc_cidr}}], "ports": [{"port": names.WEBUI_PORT, "protocol": "TCP"}]}]
    https = [r for r in _policy(exposed, "webui-egress")["egress"] if r["ports"] == [{"port": 443, "protocol": "TCP"}]]
    assert https == [{"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {
        "cidr": "0.0.0.0/0", "except": [cfg.vpc_cidr, cfg.secondary_cidr, "169.254.0.0/16"]}}]}]
    assert not [r for r in _policy(dev, "webui-egress")["egress"] if r["ports"][0]["port"] == 443]

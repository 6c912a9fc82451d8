"""The API behind an ALB (issue 13): IngressClassParams + IngressClass + the serve Service's Ingress, and
Open WebUI's Ingress on the same ALB when OIDC is configured (config/exposure.py).

The AWS Load Balancer Controller (platform_constructs/addons/aws_load_balancer_controller.py) makes one
ALB from them. Everything that decides who can reach it -- scheme, TLS policy, certificate, source
CIDRs, WAF -- is in the cluster-scoped IngressClassParams, which the controller applies over any Ingress
annotation, and whose namespaceSelector admits Ingresses of the `vllm` namespace (and `openai-webui`
with OIDC) only: an Ingress cannot make the ALB public or weaken its TLS. The Ingresses carry only
routing, health checks and (Open WebUI's) the IdP login.
HTTPS only: port 80 answers with a redirect to 443 (sslRedirectPort). Target type ip: the ALB sends
to the serve pods' IPs directly (the NetworkPolicy admits it by the VPC's primary CIDR). Deletion
protection stays off so `cdk destroy` (the controller deletes the ALB when the Ingress goes) stays
clean; platform_constructs/cleanup removes anything left by the elbv2.k8s.aws/cluster tag.

Annotation names follow the controller's docs for the pinned version (docs/guide/ingress/annotations.md
and ingress_class.md at kubernetes-sigs/aws-load-balancer-controller v3.5.0); tests check them
against that list, since the controller silently ignores an unknown annotation.
"""

from __future__ import annotations

import json

import cdk8s
from constructs import Construct

from config import names
from config.environments import EnvironmentConfig
from config.exposure import OIDC_SCOPES, WebUiOidc
from config.secrets import WEBUI_OIDC_SECRET
from config.ingress import (
    ALB_TLS_POLICY, HEALTHCHECK_INTERVAL_S, HEALTHCHECK_TIMEOUT_S, HTTP_PORT, HTTPS_PORT, SERVE_HEALTH_PATH,
    WEBUI_HEALTH_PATH, alb_idle_timeout_s,
)
from config.project import PROJECT_SLUG, PROJECT_TAG
from k8s_charts.objects import custom_resource

ANNOTATION_PREFIX = "alb.ingress.kubernetes.io/"
INGRESS_CLASS_PARAMS_API = "elbv2.k8s.aws/v1beta1"
CONTROLLER_NAME = "ingress.k8s.aws/alb"  # IngressClass.spec.controller of the AWS Load Balancer Controller


def scheme(cfg: EnvironmentConfig) -> str:
    return "internet-facing" if cfg.alb_internet_facing else "internal"


def load_balancer_attributes(cfg: EnvironmentConfig) -> list[dict[str, str]]:
    return [
        {"key": "idle_timeout.timeout_seconds", "value": str(alb_idle_timeout_s(cfg.limits))},
        {"key": "deletion_protection.enabled", "value": "false"},
        # Requests with header names that are not valid HTTP are dropped, not passed to the app.
        {"key": "routing.http.drop_invalid_header_fields.enabled", "value": "true"},
    ]


def admitted_namespaces(cfg: EnvironmentConfig) -> list[str]:
    """The namespaces whose Ingresses may use the class: the API's, and Open WebUI's only with OIDC."""
    return [names.VLLM_NAMESPACE] + ([names.WEBUI_NAMESPACE] if cfg.webui_oidc else [])


def ingress_class_params(cfg: EnvironmentConfig, waf_acl_arn: str | None) -> dict:
    spec = {
        "namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": admitted_namespaces(cfg)}]},
        # Every Ingress of the class joins one IngressGroup: one ALB for the API and Open WebUI.
        "group": {"name": names.ALB_INGRESS_GROUP},
        "scheme": scheme(cfg),
        "ipAddressType": "ipv4",
        "certificateArn": [cfg.alb_certificate],
        "sslPolicy": ALB_TLS_POLICY,
        "sslRedirectPort": str(HTTPS_PORT),
        "inboundCIDRs": list(cfg.alb_inbound_cidrs),
        "targetType": "ip",
        "loadBalancerAttributes": load_balancer_attributes(cfg),
        "tags": [{"key": PROJECT_TAG, "value": PROJECT_SLUG}, {"key": "environment", "value": cfg.name}],
    }
    if cfg.alb_internet_facing:
        if not waf_acl_arn:
            raise ValueError("an internet-facing ALB needs its WAF web ACL (waf_acl_arn)")
        spec["wafv2AclArn"] = waf_acl_arn
    return {"apiVersion": INGRESS_CLASS_PARAMS_API, "kind": "IngressClassParams",
            "metadata": {"name": names.ALB_INGRESS_CLASS}, "spec": spec}


def ingress_class() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": names.ALB_INGRESS_CLASS},
        "spec": {"controller": CONTROLLER_NAME, "parameters": {
            "apiGroup": INGRESS_CLASS_PARAMS_API.split("/")[0], "kind": "IngressClassParams",
            "name": names.ALB_INGRESS_CLASS}},
    }


# Rule order inside the IngressGroup (lower first): Open WebUI's host rule before the API's rule, which
# without api_hostname matches every host.
WEBUI_GROUP_ORDER, API_GROUP_ORDER = 10, 100


def _target_annotations(health_path: str, group_order: int) -> dict[str, str]:
    return {
        "group.order": str(group_order),
        "listen-ports": json.dumps([{"HTTP": HTTP_PORT}, {"HTTPS": HTTPS_PORT}]),
        "backend-protocol": "HTTP",
        "healthcheck-path": health_path,
        "healthcheck-port": "traffic-port",
        "healthcheck-interval-seconds": str(HEALTHCHECK_INTERVAL_S),
        "healthcheck-timeout-seconds": str(HEALTHCHECK_TIMEOUT_S),
        "success-codes": "200",
    }


def _ingress(name: str, namespace: str, annotations: dict[str, str], host: str | None, service: str,
             port: int) -> dict:
    rule: dict = {"http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}},
    }]}}
    if host:
        rule = {"host": host, **rule}  # external-dns takes the record's name from here
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {ANNOTATION_PREFIX + k: v for k, v in annotations.items()}},
        "spec": {"ingressClassName": names.ALB_INGRESS_CLASS, "rules": [rule]},
    }


def api_ingress(cfg: EnvironmentConfig) -> dict:
    """The serve Service (created by KubeRay, so not a cdk8s-plus object here) behind the ALB; on
    api_hostname only when one is configured (else on any host, e.g. the ALB's own DNS name)."""
    return _ingress(names.API_INGRESS_NAME, names.VLLM_NAMESPACE, _target_annotations(SERVE_HEALTH_PATH, API_GROUP_ORDER),
                    cfg.api_hostname, names.SERVE_SERVICE_NAME, names.SERVE_PORT)


def oidc_annotations(oidc: WebUiOidc) -> dict[str, str]:
    """The ALB authenticates every request to Open WebUI's host with the IdP (listener rule action
    authenticate-oidc) before it forwards; the client's id and secret come from WEBUI_OIDC_SECRET."""
    return {
        "auth-type": "oidc",
        "auth-idp-oidc": json.dumps({
            "issuer": oidc.issuer, "authorizationEndpoint": oidc.authorization_endpoint,
            "tokenEndpoint": oidc.token_endpoint, "userInfoEndpoint": oidc.user_info_endpoint,
            "secretName": WEBUI_OIDC_SECRET,
        }),
        "auth-on-unauthenticated-request": "authenticate",
        "auth-scope": OIDC_SCOPES,
        "auth-session-timeout": str(oidc.session_timeout_s),
    }


def webui_ingress(oidc: WebUiOidc) -> dict:
    """Open WebUI's Service on its own host of the API's ALB, behind the IdP."""
    return _ingress(names.WEBUI_INGRESS_NAME, names.WEBUI_NAMESPACE,
                    {**_target_annotations(WEBUI_HEALTH_PATH, WEBUI_GROUP_ORDER), **oidc_annotations(oidc)},
                    oidc.hostname, names.WEBUI_SERVICE_NAME, names.WEBUI_SERVICE_PORT)


def add_alb_objects(scope: Construct, cfg: EnvironmentConfig, waf_acl_arn: str | None) -> None:
    """The IngressClassParams, IngressClass and API Ingress, into `scope` (the vllm chart)."""
    for id, manifest in (("alb-ingress-class-params", ingress_class_params(cfg, waf_acl_arn)),
                         ("alb-ingress-class", ingress_class())):
        # Cluster-scoped: drop the chart's default namespace.
        custom_resource(scope, id, manifest).add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))
    custom_resource(scope, "openai-api-ingress", api_ingress(cfg))

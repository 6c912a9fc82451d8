"""The API behind an ALB (issue 13): IngressClassParams + IngressClass + the serve Service's Ingress.

The AWS Load Balancer Controller (platform_constructs/addons/aws_load_balancer_controller.py) makes one
ALB from them. Everything that decides who can reach it -- scheme, TLS policy, certificate, source
CIDRs, WAF -- is in the cluster-scoped IngressClassParams, which the controller applies over any Ingress
annotation, and whose namespaceSelector admits Ingresses of the `vllm` namespace only: an Ingress
cannot make the ALB public or weaken its TLS. The Ingress carries only routing and health checks.
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
from config.ingress import (
    ALB_TLS_POLICY, HEALTHCHECK_INTERVAL_S, HEALTHCHECK_TIMEOUT_S, HTTP_PORT, HTTPS_PORT, SERVE_HEALTH_PATH,
    alb_idle_timeout_s,
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


def ingress_class_params(cfg: EnvironmentConfig, waf_acl_arn: str | None) -> dict:
    spec = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.VLLM_NAMESPACE}},
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


def api_ingress() -> dict:
    """The serve Service (created by KubeRay, so not a cdk8s-plus object here) behind the ALB."""
    annotations = {
        "listen-ports": json.dumps([{"HTTP": HTTP_PORT}, {"HTTPS": HTTPS_PORT}]),
        "backend-protocol": "HTTP",
        "healthcheck-path": SERVE_HEALTH_PATH,
        "healthcheck-port": "traffic-port",
        "healthcheck-interval-seconds": str(HEALTHCHECK_INTERVAL_S),
        "healthcheck-timeout-seconds": str(HEALTHCHECK_TIMEOUT_S),
        "success-codes": "200",
    }
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": names.API_INGRESS_NAME, "namespace": names.VLLM_NAMESPACE,
                     "annotations": {ANNOTATION_PREFIX + k: v for k, v in annotations.items()}},
        "spec": {
            "ingressClassName": names.ALB_INGRESS_CLASS,
            "rules": [{"http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": names.SERVE_SERVICE_NAME, "port": {"number": names.SERVE_PORT}}},
            }]}}],
        },
    }


def add_alb_objects(scope: Construct, cfg: EnvironmentConfig, waf_acl_arn: str | None) -> None:
    """The IngressClassParams, IngressClass and API Ingress, into `scope` (the vllm chart)."""
    for id, manifest in (("alb-ingress-class-params", ingress_class_params(cfg, waf_acl_arn)),
                         ("alb-ingress-class", ingress_class())):
        # Cluster-scoped: drop the chart's default namespace.
        custom_resource(scope, id, manifest).add_json_patch(cdk8s.JsonPatch.remove("/metadata/namespace"))
    custom_resource(scope, "openai-api-ingress", api_ingress())

"""Add-ons in the cdk-eks-blueprints style: one add-on per module of platform_constructs/addons/, each
with a frozen props dataclass whose chart/add-on fields default to the pins of config/versions.py and
the names of config/names.py, and a construct `<X>AddOn(scope, id, *, cluster, props: <X>Props)`.
No platform construct takes the environment config: the stacks fill the props from it."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import typing
from pathlib import Path

import pytest
from constructs import Construct

import platform_constructs.addons as addons_pkg
from config import names, versions

REPO = Path(__file__).resolve().parents[2]
# Building blocks the add-ons share, not add-ons themselves.
HELPER_MODULES = {"helm_addon", "managed_addon", "pod_identity"}
ADDON_MODULES = sorted(m.name for m in pkgutil.iter_modules(addons_pkg.__path__) if m.name not in HELPER_MODULES)
HELM_FIELDS = ("chart", "repository", "version", "namespace", "release", "values")
MANAGED_FIELDS = ("addon_name", "version", "namespace", "service_account", "configuration")


def _module(name: str):
    return importlib.import_module(f"{addons_pkg.__name__}.{name}")


def _bases() -> tuple[type, type]:
    """The shared props of Helm and of EKS managed add-ons (imported per test: each test names what fails)."""
    from platform_constructs.addons.helm_addon import HelmAddOnProps
    from platform_constructs.addons.managed_addon import ManagedAddOnProps
    return HelmAddOnProps, ManagedAddOnProps


def _own_classes(module, base: type) -> dict[str, type]:
    return {n: c for n, c in vars(module).items()
            if inspect.isclass(c) and issubclass(c, base) and c.__module__ == module.__name__}


def _props_classes(module) -> dict[str, type]:
    return {n: c for n, c in vars(module).items()
            if inspect.isclass(c) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__}


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise AssertionError(f"{f.name} has no default")


def _defaults(props: type) -> dict:
    return {f.name: _default(f) for f in dataclasses.fields(props)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def _props_name(construct_name: str) -> str:
    """KarpenterAddOn -> KarpenterProps; a group of add-ons, CoreAddOns -> CoreAddOnsProps."""
    return construct_name.removesuffix("AddOn") + "Props" if construct_name.endswith("AddOn") else construct_name + "Props"


def test_the_add_on_modules_are_found():
    assert set(ADDON_MODULES) >= {"karpenter", "kuberay", "neuron", "external_secrets", "cloudwatch_observability",
                                  "ebs_csi", "core"}
    assert HELPER_MODULES <= {m.name for m in pkgutil.iter_modules(addons_pkg.__path__)}


@pytest.mark.parametrize("name", ADDON_MODULES)
def test_every_add_on_module_defines_props_and_an_add_on_construct_taking_them(name):
    module = _module(name)
    constructs = _own_classes(module, Construct)
    assert any(c.endswith("AddOn") for c in constructs), f"{name}: no <X>AddOn construct"
    for construct_name, cls in constructs.items():
        assert re.fullmatch(r"[A-Z]\w*AddOns?", construct_name), f"{name}.{construct_name}: not named <X>AddOn"
        params = inspect.signature(cls.__init__).parameters
        assert list(params)[:3] == ["self", "scope", "id"], (construct_name, list(params))
        for required in ("cluster", "props"):
            assert params[required].kind is inspect.Parameter.KEYWORD_ONLY, (construct_name, required)
        props = typing.get_type_hints(cls.__init__)["props"]
        assert props.__name__ == _props_name(construct_name) and props.__module__ == module.__name__, (
            construct_name, props)
        assert dataclasses.is_dataclass(props) and props.__dataclass_params__.frozen, props
        assert "cfg" not in params, construct_name


@pytest.mark.parametrize("name", ADDON_MODULES)
def test_every_props_class_defaults_its_chart_or_add_on_fields(name):
    HelmAddOnProps, ManagedAddOnProps = _bases()
    props_classes = _props_classes(_module(name))
    assert props_classes, f"{name}: no props dataclass"
    for props in props_classes.values():
        assert props.__dataclass_params__.frozen, props
        fields = {f.name: f for f in dataclasses.fields(props)}
        if issubclass(props, HelmAddOnProps):
            expected = HELM_FIELDS
        elif issubclass(props, ManagedAddOnProps):
            expected = MANAGED_FIELDS
        else:  # a group of add-ons: every field is an add-on's props
            expected = tuple(fields)
            assert all(issubclass(type(_default(f)), (HelmAddOnProps, ManagedAddOnProps)) for f in fields.values())
        missing = [f for f in expected if f not in _defaults(props)]
        assert not missing, f"{props.__name__}: no default for {missing}"


def _pins() -> set[str]:
    return {v for k, v in vars(versions).items() if k.isupper() and isinstance(v, str)}


def test_helm_add_on_defaults_are_the_pins_of_config_versions():
    from platform_constructs.addons import (
        aws_load_balancer_controller, external_dns, external_secrets, karpenter, kuberay, neuron,
    )
    HelmAddOnProps, _ = _bases()

    expected = {
        karpenter.KarpenterProps: dict(repository=versions.KARPENTER_CHART_REPO, version=versions.KARPENTER_VERSION,
                                       crd_repository=versions.KARPENTER_CRD_CHART_REPO,
                                       namespace=names.KARPENTER_NAMESPACE),
        neuron.NeuronProps: dict(repository=versions.NEURON_CHART_REPO, version=versions.NEURON_CHART_VERSION,
                                 namespace=names.NEURON_NAMESPACE),
        kuberay.KubeRayProps: dict(repository=versions.KUBERAY_CHART_REPO, version=versions.KUBERAY_VERSION,
                                   namespace=names.KUBERAY_NAMESPACE),
        external_secrets.ExternalSecretsProps: dict(repository=versions.EXTERNAL_SECRETS_CHART_REPO,
                                                    version=versions.EXTERNAL_SECRETS_VERSION),
        aws_load_balancer_controller.AwsLoadBalancerControllerProps: dict(
            repository=versions.AWS_LOAD_BALANCER_CONTROLLER_CHART_REPO,
            version=versions.AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION,
            namespace=names.AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE),
        external_dns.ExternalDnsProps: dict(repository=versions.EXTERNAL_DNS_CHART_REPO,
                                            version=versions.EXTERNAL_DNS_CHART_VERSION,
                                            image_tag=versions.EXTERNAL_DNS_VERSION,
                                            namespace=names.EXTERNAL_DNS_NAMESPACE),
    }
    helm_props = {p for m in ADDON_MODULES for p in _props_classes(_module(m)).values() if issubclass(p, HelmAddOnProps)}
    assert helm_props == set(expected)
    core_selector = {names.NODE_ROLE_LABEL: names.CORE_NODE_ROLE}
    for props, pins in expected.items():
        defaults = _defaults(props)
        assert {k: defaults[k] for k in pins} == pins, props.__name__
        # Every repository and version default is a pin of config/versions.py, nothing typed in the add-on.
        assert {v for k, v in defaults.items() if k.endswith("repository") or k == "version"} <= _pins(), props
        assert defaults["values"] == {} and defaults["node_selector"] == core_selector, props.__name__


def test_managed_add_on_defaults():
    from platform_constructs.addons import cloudwatch_observability, core, ebs_csi
    _, ManagedAddOnProps = _bases()

    managed = {p for m in ADDON_MODULES for p in _props_classes(_module(m)).values() if issubclass(p, ManagedAddOnProps)}
    for props in managed:
        # No version pinned: EKS installs the default for the cluster's pinned Kubernetes version.
        assert _defaults(props)["version"] is None, props.__name__
    assert {_defaults(p)["addon_name"] for p in managed} == {
        "vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver",
        "amazon-cloudwatch-observability", "metrics-server", "eks-node-monitoring-agent"}
    cw = _defaults(cloudwatch_observability.CloudWatchObservabilityProps)
    assert (cw["namespace"], cw["service_account"]) == (names.CLOUDWATCH_NAMESPACE, "cloudwatch-agent")
    assert _defaults(ebs_csi.EbsCsiProps)["storage_class"] == names.GP3_STORAGE_CLASS
    assert _defaults(core.VpcCniProps)["configuration"] == {"enableNetworkPolicy": "true"}
    assert [p.addon_name for p in vars(core.CoreAddOnsProps()).values()] == [
        "vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"]  # install order, = construct ids


def test_props_values_deep_merge_over_the_add_ons_own():
    from platform_constructs.addons.helm_addon import merge_values
    own = {"a": {"b": 1, "c": 2}, "d": [1]}
    assert merge_values(own, {}) == own and list(merge_values(own, {})) == ["a", "d"]
    assert merge_values(own, {"a": {"c": 3}, "d": [2], "e": True}) == {"a": {"b": 1, "c": 3}, "d": [2], "e": True}
    assert own == {"a": {"b": 1, "c": 2}, "d": [1]}


def _platform_sources():
    for path in sorted((REPO / "platform_constructs").rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path.read_text()


def test_no_platform_construct_takes_the_environment_config():
    """The stacks read config/environments.py and hand plain values (props) down."""
    mentions = [rel for rel, text in _platform_sources() if "EnvironmentConfig" in text]
    assert mentions == []
    cfg_parameters = [f"{rel}: {m.group(0)}" for rel, text in _platform_sources()
                      for m in re.finditer(r"\bdef \w+\([^)]*\bcfg\b", text)]
    assert cfg_parameters == []


def test_props_reach_the_template():
    """A version, a values override and an add-on version set in props are what gets deployed."""
    import aws_cdk as cdk
    from aws_cdk import aws_eks_v2 as eks
    from aws_cdk.assertions import Template
    from stacks.cluster_stack import kubectl_layer

    from platform_constructs.addons.core import CoreAddOns, CoreAddOnsProps, VpcCniProps
    from platform_constructs.addons.kuberay import KubeRayAddOn, KubeRayProps
    from platform_constructs.addons.neuron import NeuronAddOn, NeuronProps

    stack = cdk.Stack(cdk.App(), "Props")
    version = versions.DEFAULT_KUBERNETES_VERSION
    cluster = eks.Cluster(stack, "Cluster", version=eks.KubernetesVersion.of(version),
                          kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=kubectl_layer(stack, version)))
    kuberay = KubeRayAddOn(stack, "KubeRay", cluster=cluster, props=KubeRayProps(
        version="9.9.9", values={"resources": {"limits": {"memory": "1Gi"}}}))
    neuron = NeuronAddOn(stack, "Neuron", cluster=cluster, props=NeuronProps())  # version read from the cluster
    CoreAddOns(stack, "CoreAddons", cluster=cluster, props=CoreAddOnsProps(vpc_cni=VpcCniProps(version="v1.2.3")))
    template = Template.from_stack(stack)
    charts = {r["Properties"]["Release"]: r["Properties"] for r in
              template.find_resources("Custom::AWSCDK-EKS-HelmChart").values()}
    assert charts["kuberay-operator"]["Version"] == "9.9.9"
    assert kuberay.values["resources"] == {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    assert charts["neuron"]["Version"] == versions.NEURON_CHART_VERSION
    assert neuron.values["scheduler"]["customScheduler"]["image"]["tag"] == versions.NEURON_KUBE_SCHEDULER_TAGS[version]
    addon_versions = {r["Properties"]["AddonName"]: r["Properties"].get("AddonVersion")
                      for r in template.find_resources("AWS::EKS::Addon").values()}
    assert addon_versions == {"vpc-cni": "v1.2.3", "kube-proxy": None, "coredns": None, "eks-pod-identity-agent": None}

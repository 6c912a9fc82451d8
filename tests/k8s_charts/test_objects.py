"""One way to write a Kubernetes object (k8s_charts/objects.py, config/kubernetes.py; docs/charts.md)."""

from __future__ import annotations

import re

import pytest

from k8s_charts import write_dist
from tests.config.test_project_names import _files_with


def test_custom_resources_are_emitted_only_through_objects_py():
    assert _files_with(re.compile(r"cdk8s\.ApiObject\(")) == {"k8s_charts/objects.py"}


# Runtime code that CDK ships as a Lambda asset runs without the project's packages: the smoke-test
# Lambda writes its Job's labels and securityContext itself (tests/platform_constructs/test_smoke_wait.py pins
# that asset's contents).
SHIPPED_RUNTIME = {"platform_constructs/smoke_test/runtime/runner.py"}


def test_security_defaults_and_standard_labels_are_spelled_once():
    def written_in(pattern: str) -> set[str]:
        return _files_with(re.compile(pattern)) - SHIPPED_RUNTIME
    assert written_in(r"""["']RuntimeDefault["']""") == {"config/kubernetes.py"}
    assert written_in(r"""["']app\.kubernetes\.io/part-of["']""") == {"config/project.py"}
    assert written_in(r"""["']app\.kubernetes\.io/name["']""") == {"config/kubernetes.py"}


def test_every_chart_is_a_platform_chart():
    import cdk8s
    import k8s_charts.app  # noqa: F401  (imports every chart)
    from k8s_charts.objects import PlatformChart
    charts = [c for c in cdk8s.Chart.__subclasses__() if c.__module__.startswith("k8s_charts.")]
    assert charts == [PlatformChart]
    assert {c.__name__ for c in PlatformChart.__subclasses__()} == {"VllmChart", "WebUiChart", "SecretsChart"}


def _containers(obj: dict) -> list[tuple[str, dict, dict]]:
    """(pod path, pod spec, container) for every container template in a manifest."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            if "containers" in node and isinstance(node["containers"], list):
                for c in node["containers"] + node.get("initContainers", []):
                    found.append((path, node, c))
            for k, v in node.items():
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")
    walk(obj, f"{obj['kind']}/{obj['metadata']['name']}")
    return found


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_container_in_dist_has_the_security_defaults(env, tmp_path):
    import yaml
    assert write_dist.main(["--env", env, "--out", str(tmp_path)]) == 0
    objs = [d for f in sorted(tmp_path.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    containers = [c for o in objs for c in _containers(o)]
    assert len(containers) >= 4  # head, worker, its init container, Open WebUI
    for path, pod, c in containers:
        ctx = c.get("securityContext", {})
        assert ctx.get("allowPrivilegeEscalation") is False, (path, c["name"])
        assert ctx.get("capabilities", {}).get("drop") == ["ALL"], (path, c["name"])
        assert pod.get("securityContext", {}).get("seccompProfile") == {"type": "RuntimeDefault"}, path

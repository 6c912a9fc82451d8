"""One project slug (config/project.py) from which every project-specific name derives (issue 10)."""

from __future__ import annotations

import re
from pathlib import Path

from config import names, project
from config.environments import ENVIRONMENTS, PIPELINE

REPO = Path(__file__).resolve().parents[2]
SKIP = {"tests", "node_modules", "cdk.out", "dist", ".git", ".cache", "__pycache__"}
SLUG = re.compile(r"llama3-?inf2", re.IGNORECASE)  # the slug and its CamelCase form


def _sources() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.py")
                  if not set(p.relative_to(REPO).parts[:-1]) & SKIP
                  and not any(part.startswith(".venv") for part in p.relative_to(REPO).parts))


def _files_with(pattern: re.Pattern) -> set[str]:
    return {str(p.relative_to(REPO)) for p in _sources() if pattern.search(p.read_text())}


def test_the_slug_is_written_in_one_module():
    assert _files_with(SLUG) == {"config/project.py"}


def test_the_in_cluster_serve_url_is_built_once():
    assert _files_with(re.compile(r"svc\.cluster\.local")) == {"config/names.py"}


def test_the_cloudwatch_namespace_is_defined_once():
    found = _files_with(re.compile(r"""["']amazon-cloudwatch["']"""))
    assert found == {"config/names.py"}


def test_the_derived_names_render_exactly_as_deployed():
    """Byte-identical to the names the stacks were first deployed with: a rename replaces resources."""
    dev = ENVIRONMENTS["dev"]
    assert (dev.stack_prefix, dev.cluster_name, ENVIRONMENTS["prod"].cluster_name) == (
        "Llama3Inf2-dev", "llama3-inf2-dev", "llama3-inf2-prod")
    assert project.default_cluster_name() == "llama3-inf2"
    assert (project.PIPELINE_NAME, project.PIPELINE_STACK_NAME) == ("llama3-inf2-platform", "Llama3Inf2-Pipeline")
    assert PIPELINE.repository == "example-org/llama3-inf2-platform"
    assert project.PART_OF_LABELS == {"app.kubernetes.io/part-of": "llama3-inf2"}
    assert project.MANAGED_BY_LABELS == {"app.kubernetes.io/managed-by": "llama3-inf2-platform"}
    assert (project.PROJECT_TAG, project.PROJECT_SLUG) == ("project", "llama3-inf2")
    assert project.SERVING_METRIC_NAMESPACE == "Llama3Inf2/Serving"
    assert project.CACHE_DIR == "/var/cache/llama3-inf2"
    assert project.log_group_name("c", "serving-metrics") == "/llama3-inf2/c/serving-metrics"
    assert project.SMOKE_TEST_GROUP == "llama3-inf2-smoke-test"
    assert project.SERVING_REPOSITORY == "llama3-inf2-serving"
    assert names.RAYSERVICE_NAME == "vllm-llama3-inf2"
    assert names.NODE_ROLE_LABEL == "platform.llama3-inf2/role"


def test_consumers_import_the_shared_names():
    from k8s_charts import external_secrets, serve_config, vllm_chart, write_dist
    from platform_constructs import karpenter_pools, smoke_test
    from platform_constructs.addons import cloudwatch_observability
    from platform_constructs.observability import agent, metrics
    from tools import endpoint, first_hour
    from tools.webui import run_local
    cloudwatch_namespace = cloudwatch_observability.CloudWatchObservabilityProps(cluster_name="c").namespace
    assert agent.AGENT_NAMESPACE == cloudwatch_namespace == names.CLOUDWATCH_NAMESPACE
    assert metrics.SERVING_NAMESPACE == project.SERVING_METRIC_NAMESPACE
    assert smoke_test.KUBERNETES_GROUP == project.SMOKE_TEST_GROUP
    assert serve_config.CACHE_MOUNT == project.CACHE_DIR  # the worker's model-cache emptyDir (vllm_chart.py)
    assert any(m["mountPath"] == project.CACHE_DIR for m in vllm_chart.worker_template(_chart_inputs())
               ["spec"]["containers"][0]["volumeMounts"])
    assert write_dist.SERVING_REPOSITORY == project.SERVING_REPOSITORY
    assert external_secrets.MANAGED_BY_LABELS == project.MANAGED_BY_LABELS
    assert vllm_chart.APP_LABELS["app.kubernetes.io/part-of"] == project.PROJECT_SLUG
    assert endpoint.DEFAULT_BASE_URL == run_local.LOCAL_MODE_BASE_URL == names.LOCAL_SERVE_URL
    assert names.LOCAL_SERVE_URL == "http://127.0.0.1:8000/v1"
    assert f"--base-url {names.LOCAL_SERVE_URL} " in first_hour.render(ENVIRONMENTS["dev"])
    nodepool = karpenter_pools.ec2_node_class("n", cluster_name="c", environment="dev", root_gib=1)
    assert nodepool["spec"]["tags"]["project"] == project.PROJECT_SLUG


def _chart_inputs():
    from config.environments import load_config
    from k8s_charts import ChartInputs
    return ChartInputs.for_environment(load_config({"env": "dev"}), "123456789012.dkr.ecr.us-east-1.amazonaws.com/r:t")

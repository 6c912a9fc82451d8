"""The project's one slug, and every name derived from it.

Stack names, tags, labels, the metric namespace, cache and log paths, the ECR repository and the
default cluster names all start from PROJECT_SLUG, so renaming the project (or running a second copy
of it in one account) is this one value. tests/config/test_project_names.py checks that the slug is
written nowhere else.
"""

from __future__ import annotations

PROJECT_SLUG = "llama3-inf2"
# CloudFormation stack names and the CloudWatch metric namespace use the CamelCase form: "Llama3Inf2".
PROJECT_CAMEL = "".join(part.capitalize() for part in PROJECT_SLUG.split("-"))
# The platform as a whole (the pipeline, the package, what manages the Kubernetes objects).
PLATFORM_NAME = f"{PROJECT_SLUG}-platform"

# AWS tags and Kubernetes labels
PROJECT_TAG = "project"  # tag key; the value is PROJECT_SLUG
PART_OF_LABELS = {"app.kubernetes.io/part-of": PROJECT_SLUG}
MANAGED_BY_LABELS = {"app.kubernetes.io/managed-by": PLATFORM_NAME}

PIPELINE_NAME = PLATFORM_NAME
PIPELINE_STACK_NAME = f"{PROJECT_CAMEL}-Pipeline"
# CloudWatch namespace of the serving metrics (the metrics bridge writes it, dashboard and alarms read it).
SERVING_METRIC_NAMESPACE = f"{PROJECT_CAMEL}/Serving"
# Node-local cache on the Neuron nodes: Hugging Face downloads and Neuron-compiled artifacts.
CACHE_DIR = f"/var/cache/{PROJECT_SLUG}"
# ECR repository of the serving image that `k8s_charts.write_dist` points plain manifests at.
SERVING_REPOSITORY = f"{PROJECT_SLUG}-serving"
# The Kubernetes group the smoke-test Lambda's access entry names (EKS forbids "system:" groups).
SMOKE_TEST_GROUP = f"{PROJECT_SLUG}-smoke-test"


def stack_prefix(env_name: str) -> str:
    """Prefix of every stack of one environment: Llama3Inf2-<env>."""
    return f"{PROJECT_CAMEL}-{env_name}"


def default_cluster_name(env_name: str | None = None) -> str:
    """The EKS cluster name an environment gets unless it names its own."""
    return f"{PROJECT_SLUG}-{env_name}" if env_name else PROJECT_SLUG


def log_group_name(cluster_name: str, what: str) -> str:
    """A CloudWatch log group of this project's own (not one AWS creates for a service)."""
    return f"/{PROJECT_SLUG}/{cluster_name}/{what}"

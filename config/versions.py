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
KARPENTER_VERSION = "1.14.1"  # matches ../shared/crds (karpenter.sh v1 CRDs at v1.14.1)

NEURON_CHART_REPO = "oci://public.ecr.aws/neuron/neuron-helm-chart"
NEURON_CHART_VERSION = "1.3.0"

KUBERAY_CHART_REPO = "https://ray-project.github.io/kuberay-helm/"
KUBERAY_VERSION = "1.7.0"  # matches ../shared/crds (ray.io v1 CRDs at v1.7.0)

# --- Nodes -----------------------------------------------------------------------------------------
# Pinned AL2023 AMI alias for Karpenter's EC2NodeClass. Never "@latest": an unpinned AMI update once
# broke the Inf2 replicas of the original blueprint. Bump deliberately, after testing a canary node.
AL2023_AMI_ALIAS = "al2023@v20261020"

# --- Serving -------------------------------------------------------------------------------------
# The Ray version the RayService declares (rayVersion) and the serving image installs.
RAY_VERSION = "2.60.0"
# Newest Inf2-capable vLLM: the Neuron deep learning container (SDK 2.31.x, vLLM 0.16 with NxD Inference).
NEURON_VLLM_IMAGE = "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py311-sdk2.31.0-ubuntu24.04"

# --- Open WebUI ------------------------------------------------------------------------------------
OPEN_WEBUI_VERSION = "0.12.4"
OPEN_WEBUI_IMAGE = f"ghcr.io/open-webui/open-webui:v{OPEN_WEBUI_VERSION}"

"""Names and ports shared by the CDK stacks, the cdk8s charts, the serving app and the tools.

Defined once here; everything else imports them. Names that carry the project's slug derive from
config/project.py.
"""

from config.project import PROJECT_SLUG

# Namespaces
VLLM_NAMESPACE = "vllm"
WEBUI_NAMESPACE = "openai-webui"
KARPENTER_NAMESPACE = "kube-system"
KUBERAY_NAMESPACE = "kuberay-operator"
NEURON_NAMESPACE = "kube-system"
# The AWS Load Balancer Controller (platform_constructs/addons/aws_load_balancer_controller.py). The ALB it
# makes sends traffic from its own ENIs in the VPC's primary subnets, not from this namespace: the
# NetworkPolicies admit the ALB by the VPC's primary CIDR (k8s_charts/network_policies.py), and this
# namespace only for the controller's own webhook.
AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE = "kube-system"
# Its service account: the Pod Identity association's, and the subject of the Role that lets it read
# Open WebUI's OIDC client Secret (k8s_charts/webui_chart.py).
AWS_LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
# The IngressClass (and its IngressClassParams) the inference charts define and their Ingresses name.
ALB_INGRESS_CLASS = "alb-inference"
# The serve Service's Ingress (namespace vllm); its status carries the ALB's DNS name once the controller made it.
API_INGRESS_NAME = "openai-api"
# Open WebUI's Ingress (namespace openai-webui, only with webui_oidc): joins the API's ALB (one IngressGroup).
WEBUI_INGRESS_NAME = "open-webui"
ALB_INGRESS_GROUP = f"{PROJECT_SLUG}-inference"
# external-dns (platform_constructs/addons/external_dns.py), only with a DNS zone configured.
EXTERNAL_DNS_NAMESPACE = "external-dns"
# Created by the amazon-cloudwatch-observability add-on; the serving metrics agent runs there too, and
# it is the one namespace the serving NetworkPolicy lets scrape the Ray pods' metrics port.
CLOUDWATCH_NAMESPACE = "amazon-cloudwatch"

# RayService and its Services (KubeRay derives the serve Service name from the RayService name)
RAYSERVICE_NAME = f"vllm-{PROJECT_SLUG}"
SERVE_SERVICE_NAME = f"{RAYSERVICE_NAME}-serve-svc"
# The head Service KubeRay creates for a RayService (Ray dashboard, GCS, client ports)
RAY_HEAD_SERVICE_NAME = f"{RAYSERVICE_NAME}-head-svc"
WEBUI_SERVICE_NAME = "open-webui"

# Ports of the Ray head and the serve endpoint
SERVE_PORT = 8000
RAY_GCS_PORT = 6379
RAY_DASHBOARD_PORT = 8265
RAY_CLIENT_PORT = 10001
RAY_METRICS_PORT = 8080
WEBUI_PORT = 8080
WEBUI_SERVICE_PORT = 80

# app.kubernetes.io/name of the smoke test's objects and of its Job's pods (platform_constructs/smoke_test
# CONFIGMAP and runtime/runner.py); the serve-port NetworkPolicy admits those pods by it.
SMOKE_TEST_NAME = "smoke-test"

# URLs of the serve endpoint. In the cluster: the serve Service's DNS name (Open WebUI, the smoke Job).
SERVE_URL_IN_CLUSTER = f"http://{SERVE_SERVICE_NAME}.{VLLM_NAMESPACE}.svc.cluster.local:{SERVE_PORT}/v1"
# On the user's machine: local mode (`make serve-local`) and `kubectl port-forward` both listen here.
LOCALHOST = "127.0.0.1"


def local_url(port: int) -> str:
    return f"http://{LOCALHOST}:{port}"


LOCAL_SERVE_URL = f"{local_url(SERVE_PORT)}/v1"

# Node labels the Karpenter NodePools set and the charts select on
NODE_ROLE_LABEL = f"platform.{PROJECT_SLUG}/role"  # "core" | "inference"
CORE_NODE_ROLE = "core"
INFERENCE_NODE_ROLE = "inference"  # set by the inferentia-inf2 and trainium-trn1 NodePools
NODEPOOL_LABEL = "karpenter.sh/nodepool"
NODEPOOL_DEFAULT = "default"
NODEPOOL_INF2 = "inferentia-inf2"
NODEPOOL_TRN1 = "trainium-trn1"
# The NodePool of each accelerator family (AcceleratorPreset.family), in the order they are installed.
NODEPOOL_BY_FAMILY = {"inf2": NODEPOOL_INF2, "trn1": NODEPOOL_TRN1}
NEURON_TAINT_KEY = "aws.amazon.com/neuron"
NEURON_RESOURCE = "aws.amazon.com/neuron"
NEURON_CORE_RESOURCE = "aws.amazon.com/neuroncore"

# Name of the scheduler the Neuron scheduler extension registers (used by the RayService workers)
NEURON_SCHEDULER_NAME = "my-scheduler"

# StorageClass of the gp3 EBS volumes (the platform makes it the default; Open WebUI's data PVC names it)
GP3_STORAGE_CLASS = "gp3"

# CloudWatch dashboard of an environment: f"{stack_prefix}{CLOUDWATCH_DASHBOARD_SUFFIX}"
# (stack_prefix from config/environments.py); the first-hour commands link to it.
CLOUDWATCH_DASHBOARD_SUFFIX = "-inference"

# Service account of the RayService's worker pods (the vLLM replicas). Its EKS Pod Identity association
# (stacks/inference_stack.py) gives them the model store's role: read weights/ and artifacts/, write
# artifacts/ only (config/model_store.py). The chart must set serviceAccountName on the worker pods.
RAY_WORKER_SERVICE_ACCOUNT = "ray-worker"

# The vLLM worker pods' Ray container (k8s_charts/vllm_chart.py), which `kubectl exec -c` names.
RAY_WORKER_CONTAINER = "ray-worker"
# Ray's session files in every Ray pod (the ray-logs volume); Serve's replica logs are under it.
RAY_LOG_DIR = "/tmp/ray"
# The replica's one-line fatal startup error begins with this (serving/startup.py); the first-hour
# command greps the replica logs for it.
STARTUP_ERROR_MARKER = "fatal startup error"

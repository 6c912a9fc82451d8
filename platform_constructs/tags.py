"""AWS resource tags that Kubernetes controllers discover resources by (one place for each key)."""

ELB_TAG = "kubernetes.io/role/elb"  # public subnets: internet-facing load balancers
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"  # private subnets: internal load balancers
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"  # subnets Karpenter launches nodes into
# EKS tags the cluster security group it creates with this key; Karpenter nodes join that group.
EKS_CLUSTER_NAME_TAG = "aws:eks:cluster-name"


def cluster_tag(cluster_name: str) -> str:
    return f"kubernetes.io/cluster/{cluster_name}"

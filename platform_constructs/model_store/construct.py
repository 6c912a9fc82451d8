"""ModelStore: the environment's S3 bucket of model weights and Neuron compiled artifacts.

Private (BlockPublicAccess.BLOCK_ALL, bucket-owner-enforced objects), TLS only (enforce_ssl adds the
aws:SecureTransport=false Deny), encrypted with SSE-S3. SSE-S3 and not a KMS key: the contents are a
public model's weights and artifacts derived from them, and with a CMK every reader (each worker, the
prepare command) would also need kms:Decrypt, one more grant to get wrong for no confidentiality
gain (S3 encrypts at rest either way). Not versioned: an artifacts/ prefix is immutable once its
_COMPLETE is written (conditional writes, serving/model_store.py) and weights are pinned by revision,
so versions would only hold copies.

Lifecycle: incomplete multipart uploads are aborted after 1 day (a crashed upload of a 5 GB shard
otherwise bills forever, invisibly); artifacts/ objects expire ARTIFACTS_EXPIRE_DAYS after upload.
That expiry never loses anything silently: a worker that finds no _COMPLETE compiles once and
republishes (docs/model-store.md); a prefix still in use only costs one compile every 90 days.
Weights never expire.

removal_policy DESTROY + auto_delete_objects: `cdk destroy` empties and deletes the bucket (the
other stacks' resources are DESTROY too; docs/lifecycle.md), everything in it can be rebuilt with
`python -m serving.model_store prepare`.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, aws_iam as iam, aws_s3 as s3
from constructs import Construct

from config.model_store import ABORT_MULTIPART_DAYS, ARTIFACTS_EXPIRE_DAYS, ARTIFACTS_ROOT, WEIGHTS_ROOT
from platform_constructs.nag import acknowledge, wildcard_resource_findings


def worker_statements(bucket_arn: str) -> list[iam.PolicyStatement]:
    """What a worker may do: read weights/ and artifacts/, list only those prefixes, write only
    artifacts/ (its compile's objects, _COMPILING, _COMPLETE). No Delete: a worker never removes
    another's artifacts; the lifecycle rule does."""
    prefixes = [f"{WEIGHTS_ROOT}*", f"{ARTIFACTS_ROOT}*"]
    return [
        iam.PolicyStatement(sid="ListStorePrefixes", actions=["s3:ListBucket"], resources=[bucket_arn],
                            conditions={"StringLike": {"s3:prefix": [*prefixes, WEIGHTS_ROOT, ARTIFACTS_ROOT]}}),
        iam.PolicyStatement(sid="ReadWeightsAndArtifacts", actions=["s3:GetObject"],
                            resources=[f"{bucket_arn}/{p}" for p in prefixes]),
        iam.PolicyStatement(sid="WriteArtifactsOnly", actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                            resources=[f"{bucket_arn}/{ARTIFACTS_ROOT}*"]),
    ]


class ModelStore(Construct):
    def __init__(self, scope: Construct, id: str, *, cluster_name: str, bucket_name: str | None = None,
                 access_logs: s3.IBucket | None = None) -> None:
        super().__init__(scope, id)
        self.cluster_name = cluster_name
        self.bucket = s3.Bucket(
            self, "Bucket", bucket_name=bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True, versioned=False,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{cluster_name}/model-store/" if access_logs else None,
            lifecycle_rules=[
                s3.LifecycleRule(id="AbortIncompleteUploads",
                                 abort_incomplete_multipart_upload_after=Duration.days(ABORT_MULTIPART_DAYS)),
                s3.LifecycleRule(id="ExpireOldArtifacts", prefix=ARTIFACTS_ROOT,
                                 expiration=Duration.days(ARTIFACTS_EXPIRE_DAYS)),
            ],
            removal_policy=RemovalPolicy.DESTROY, auto_delete_objects=True,
        )
        if access_logs is None:
            acknowledge(self.bucket, {
                "AwsSolutions-S1": "Server access logs are optional (access_logs=): the bucket holds a public "
                                   "model's weights and derived artifacts, read by the workers' one Pod Identity "
                                   "role; object-level audit, where required, is a CloudTrail trail with S3 data "
                                   "events, not a further bucket per environment.",
            })

    def grant_worker(self, role: iam.IRole) -> iam.ManagedPolicy:
        """Attach worker_statements to `role` as one customer-managed policy of this construct: the
        store's whole worker contract is one named document, reviewable on its own in IAM."""
        policy = iam.ManagedPolicy(self, "WorkerPolicy", description="Model store: read weights/ and artifacts/, "
                                   "write artifacts/ only", statements=worker_statements(self.bucket.bucket_arn),
                                   roles=[role])
        acknowledge(policy, wildcard_resource_findings(
            policy, [f"{self.bucket.bucket_arn}/{p}*" for p in (WEIGHTS_ROOT, ARTIFACTS_ROOT)],
            "Object ARNs under one prefix of this environment's model store: the files of a model snapshot "
            "and of a compile are not known at deploy time (config/model_store.py)."))
        return policy

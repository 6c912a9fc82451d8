"""The `openai-webui` namespace: Open WebUI talking to the vLLM serve Service with the shared API key."""

from __future__ import annotations

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from config import names
from config.secrets import API_KEY_ENV, API_KEY_SECRET, WEBUI_SECRET, WEBUI_SECRET_KEY
from config.versions import OPEN_WEBUI_IMAGE
from config.kubernetes import RUNTIME_DEFAULT_SECCOMP
from config.webui import COMMON_ENV
from k8s_charts.inputs import ChartInputs, check_image
from k8s_charts.network_policies import WEBUI_POD_LABELS, webui_network_policies
from k8s_charts.objects import PlatformChart, namespace

DATA_DIR = "/app/backend/data"
DATA_SIZE = cdk8s.Size.gibibytes(10)
# The image's default user is root; run as an unprivileged uid and let the volume be group-writable.
RUN_AS_USER = 10001  # high uid: never collides with a host account
FS_GROUP = 10001


class WebUiChart(PlatformChart):
    """Deployment + Service `open-webui` (80 -> 8080), its data PVC on gp3, NetworkPolicies."""

    def __init__(self, scope: Construct, id: str, inputs: ChartInputs) -> None:
        super().__init__(scope, id, namespace=names.WEBUI_NAMESPACE)
        check_image("OPEN_WEBUI_IMAGE", OPEN_WEBUI_IMAGE)
        # Open WebUI needs nothing privileged: enforce the restricted Pod Security Standard.
        self.namespace_obj = namespace(self, names.WEBUI_NAMESPACE, {"pod-security.kubernetes.io/enforce": "restricted"})
        # Accounts, chats and settings (SQLite) survive restarts and rescheduling.
        data = kplus.PersistentVolumeClaim(
            self, "data",
            metadata=cdk8s.ApiObjectMetadata(name="open-webui-data"),
            access_modes=[kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE],
            storage=DATA_SIZE,
            storage_class_name=names.GP3_STORAGE_CLASS,
        )
        self.deployment = kplus.Deployment(
            self, "deployment",
            metadata=cdk8s.ApiObjectMetadata(name=names.WEBUI_SERVICE_NAME, labels=WEBUI_POD_LABELS),
            replicas=1,
            # The data volume is ReadWriteOnce and SQLite is single-writer: never two pods at once.
            strategy=kplus.DeploymentStrategy.recreate(),
            select=False,
            pod_metadata=cdk8s.ApiObjectMetadata(labels=WEBUI_POD_LABELS),
            automount_service_account_token=False,
            security_context=kplus.PodSecurityContextProps(
                ensure_non_root=True, user=RUN_AS_USER, group=FS_GROUP, fs_group=FS_GROUP,
                fs_group_change_policy=kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
            ),
        )
        self.deployment.select(kplus.LabelSelector.of(labels=WEBUI_POD_LABELS))
        env = {k: kplus.EnvValue.from_value(v) for k, v in COMMON_ENV.items()}
        env.update({
            "OPENAI_API_BASE_URLS": kplus.EnvValue.from_value(names.SERVE_URL_IN_CLUSTER),
            "OPENAI_API_KEYS": kplus.EnvValue.from_secret_value(
                kplus.SecretValue(secret=kplus.Secret.from_secret_name(self, "api-key", API_KEY_SECRET), key=API_KEY_ENV)),
            # A fixed signing key keeps users logged in across restarts (otherwise generated per start).
            "WEBUI_SECRET_KEY": kplus.EnvValue.from_secret_value(
                kplus.SecretValue(secret=kplus.Secret.from_secret_name(self, "webui-key", WEBUI_SECRET), key=WEBUI_SECRET_KEY)),
            "DATA_DIR": kplus.EnvValue.from_value(DATA_DIR),
            "HOME": kplus.EnvValue.from_value("/tmp"),
        })
        probe_opts = dict(initial_delay_seconds=cdk8s.Duration.seconds(0), period_seconds=cdk8s.Duration.seconds(10))
        self.container = self.deployment.add_container(
            name="open-webui",
            image=OPEN_WEBUI_IMAGE,
            image_pull_policy=kplus.ImagePullPolicy.IF_NOT_PRESENT,
            ports=[kplus.ContainerPort(number=names.WEBUI_PORT, name="http")],
            env_variables=env,
            resources=kplus.ContainerResources(
                cpu=kplus.CpuResources(request=kplus.Cpu.millis(500), limit=kplus.Cpu.millis(2000)),
                memory=kplus.MemoryResources(request=cdk8s.Size.gibibytes(1), limit=cdk8s.Size.gibibytes(2)),
            ),
            # Database migrations on first start take a while: allow up to 5 minutes before liveness.
            startup=kplus.Probe.from_http_get("/health", port=names.WEBUI_PORT, failure_threshold=30, **probe_opts),
            readiness=kplus.Probe.from_http_get("/health", port=names.WEBUI_PORT, failure_threshold=3, **probe_opts),
            liveness=kplus.Probe.from_http_get("/health", port=names.WEBUI_PORT, failure_threshold=6,
                                               initial_delay_seconds=cdk8s.Duration.seconds(0),
                                               period_seconds=cdk8s.Duration.seconds(20)),
            security_context=kplus.ContainerSecurityContextProps(
                ensure_non_root=True, user=RUN_AS_USER, group=FS_GROUP,
                read_only_root_filesystem=True, allow_privilege_escalation=False, privileged=False,
            ),
        )
        # cdk8s-plus-27 can set neither seccomp nor "drop ALL"; the restricted Pod Security Standard needs both.
        cdk8s.ApiObject.of(self.deployment).add_json_patch(
            cdk8s.JsonPatch.add("/spec/template/spec/securityContext/seccompProfile", dict(RUNTIME_DEFAULT_SECCOMP)),
            cdk8s.JsonPatch.add("/spec/template/spec/containers/0/securityContext/capabilities", {"drop": ["ALL"]}),
        )
        self.container.mount(DATA_DIR, kplus.Volume.from_persistent_volume_claim(self, "data-volume", data))
        self.container.mount("/tmp", kplus.Volume.from_empty_dir(self, "tmp", "tmp"))
        self.service = kplus.Service(
            self, "service",
            metadata=cdk8s.ApiObjectMetadata(name=names.WEBUI_SERVICE_NAME, labels=WEBUI_POD_LABELS),
            type=kplus.ServiceType.CLUSTER_IP,
            selector=kplus.Pods.select(self, "service-pods", labels=WEBUI_POD_LABELS),
            ports=[kplus.ServicePort(port=names.WEBUI_SERVICE_PORT, target_port=names.WEBUI_PORT, name="http")],
        )
        webui_network_policies(self, WEBUI_POD_LABELS, inputs.ingress_namespace)

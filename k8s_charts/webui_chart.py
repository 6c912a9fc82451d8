"""The `openai-webui` namespace: Open WebUI talking to the vLLM serve Service with its API key.

Signup off and the admin bootstrapped from a Secret at the first start (config/webui.py says why), every
setting from the environment at every start, Pod Security `restricted`, egress only to the serve port
and DNS (network_policies.py). With webui_oidc (config/exposure.py): its Ingress on the API's ALB behind
the IdP, Open WebUI's own OIDC login with roles from the IdP's groups, and egress to the IdP on 443."""

from __future__ import annotations

import cdk8s
import cdk8s_plus_27 as kplus
from constructs import Construct

from config import names
from config.exposure import K8S_CLIENT_ID_KEY, K8S_CLIENT_SECRET_KEY, WebUiOidc
from config.secrets import (API_KEY_SECRET, API_KEY_SECRET_KEY, WEBUI_ADMIN_PASSWORD_KEY, WEBUI_ADMIN_SECRET,
                            WEBUI_OIDC_SECRET, WEBUI_SECRET, WEBUI_SECRET_KEY)
from config.versions import OPEN_WEBUI_IMAGE
from config.kubernetes import RESTRICTED, RUNTIME_DEFAULT_SECCOMP, app_labels, pod_security_labels
from config.webui import ADMIN_PASSWORD_MAX_BYTES, COMMON_ENV, admin_identity_env, oidc_env
from k8s_charts.inputs import ChartInputs, check_image
from k8s_charts.ingress import webui_ingress
from k8s_charts.network_policies import LINK_LOCAL_CIDR, WEBUI_POD_LABELS, OidcAlbPeers, webui_network_policies
from k8s_charts.objects import PlatformChart, custom_resource, namespace

DATA_DIR = "/app/backend/data"
DATA_SIZE = cdk8s.Size.gibibytes(10)
# The image's default user is root; run as an unprivileged uid and let the volume be group-writable.
RUN_AS_USER = 10001  # high uid: never collides with a host account
FS_GROUP = 10001
ADMIN_PASSWORD_ENV = "WEBUI_ADMIN_PASSWORD"  # open-webui 0.12.4 env.py:807
OPENAI_KEYS_ENV = "OPENAI_API_KEYS"
# Open WebUI creates no admin when the password is empty (0.12.4 main.py:401), and none when bcrypt
# refuses it (over 72 bytes: bcrypt 5 raises, utils/auth.py:660 create_admin_user logs it and goes
# on); then the first visitor's signup makes them admin (first-user signup ignores ENABLE_SIGNUP). So
# the pod does not start without a usable password -- nor with an empty API key, which would only fail
# every chat -- and says why in its log.
PRECHECK_SCRIPT = (
    f'fail() {{ echo "open-webui: $1" >&2; exit 1; }}; '
    f'[ -n "${ADMIN_PASSWORD_ENV}" ] || fail "{ADMIN_PASSWORD_ENV} is empty: fix Secret {WEBUI_ADMIN_SECRET} '
    f'key {WEBUI_ADMIN_PASSWORD_KEY} (synced from Secrets Manager)"; '
    f'[ "$(printf %s "${ADMIN_PASSWORD_ENV}" | wc -c)" -le {ADMIN_PASSWORD_MAX_BYTES} ] || fail '
    f'"{ADMIN_PASSWORD_ENV} is longer than {ADMIN_PASSWORD_MAX_BYTES} bytes (bcrypt): fix Secret {WEBUI_ADMIN_SECRET}"; '
    f'[ -n "${OPENAI_KEYS_ENV}" ] || fail "{OPENAI_KEYS_ENV} is empty: fix Secret {API_KEY_SECRET} key {API_KEY_SECRET_KEY}"'
)


class WebUiChart(PlatformChart):
    """Deployment + Service `open-webui` (80 -> 8080), its data PVC on gp3, NetworkPolicies."""

    def __init__(self, scope: Construct, id: str, inputs: ChartInputs) -> None:
        super().__init__(scope, id, namespace=names.WEBUI_NAMESPACE)
        check_image("OPEN_WEBUI_IMAGE", OPEN_WEBUI_IMAGE)
        # Open WebUI needs nothing privileged: enforce the restricted Pod Security Standard.
        self.namespace_obj = namespace(self, names.WEBUI_NAMESPACE, pod_security_labels(RESTRICTED))
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
        env = {k: kplus.EnvValue.from_value(v) for k, v in {**COMMON_ENV, **admin_identity_env()}.items()}
        # Read at every start (ENABLE_PERSISTENT_CONFIG=false, config/webui.py). After a rotation, once
        # ESO has synced the Secret (SECRET_REFRESH_INTERVAL, or force it: docs/security.md), restart
        # while the old key is still accepted as "previous":
        #   kubectl rollout restart deployment/open-webui -n openai-webui
        # (no checksum annotation: the value is synced in the cluster, never known at synth time).
        secrets = {
            OPENAI_KEYS_ENV: kplus.EnvValue.from_secret_value(kplus.SecretValue(
                secret=kplus.Secret.from_secret_name(self, "api-key", API_KEY_SECRET), key=API_KEY_SECRET_KEY)),
            # Used only while the database has no users (the first start); later changes are made in Open WebUI.
            ADMIN_PASSWORD_ENV: kplus.EnvValue.from_secret_value(kplus.SecretValue(
                secret=kplus.Secret.from_secret_name(self, "admin", WEBUI_ADMIN_SECRET), key=WEBUI_ADMIN_PASSWORD_KEY)),
        }
        env.update(secrets)
        env.update({
            "OPENAI_API_BASE_URLS": kplus.EnvValue.from_value(names.SERVE_URL_IN_CLUSTER),
            # A fixed signing key keeps users logged in across restarts (otherwise generated per start).
            "WEBUI_SECRET_KEY": kplus.EnvValue.from_secret_value(
                kplus.SecretValue(secret=kplus.Secret.from_secret_name(self, "webui-key", WEBUI_SECRET), key=WEBUI_SECRET_KEY)),
            "DATA_DIR": kplus.EnvValue.from_value(DATA_DIR),
            "HOME": kplus.EnvValue.from_value("/tmp"),
        })
        oidc = inputs.cfg.webui_oidc
        if oidc:
            env.update({k: kplus.EnvValue.from_value(v) for k, v in oidc_env(oidc).items()})
            client = kplus.Secret.from_secret_name(self, "oidc-client", WEBUI_OIDC_SECRET)
            env.update({name: kplus.EnvValue.from_secret_value(kplus.SecretValue(secret=client, key=key))
                        for name, key in (("OAUTH_CLIENT_ID", K8S_CLIENT_ID_KEY), ("OAUTH_CLIENT_SECRET", K8S_CLIENT_SECRET_KEY))})
        security_context = kplus.ContainerSecurityContextProps(
            ensure_non_root=True, user=RUN_AS_USER, group=FS_GROUP,
            read_only_root_filesystem=True, allow_privilege_escalation=False, privileged=False,
        )
        # The same image's shell, so the check needs nothing else pulled.
        self.deployment.add_init_container(
            name="check-secrets",
            image=OPEN_WEBUI_IMAGE,
            image_pull_policy=kplus.ImagePullPolicy.IF_NOT_PRESENT,
            command=["sh", "-c", PRECHECK_SCRIPT],
            env_variables=secrets,
            resources=kplus.ContainerResources(
                cpu=kplus.CpuResources(request=kplus.Cpu.millis(10), limit=kplus.Cpu.millis(100)),
                memory=kplus.MemoryResources(request=cdk8s.Size.mebibytes(16), limit=cdk8s.Size.mebibytes(64)),
            ),
            security_context=security_context,
        )
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
            security_context=security_context,
        )
        # cdk8s-plus-27 can set neither seccomp nor "drop ALL"; the restricted Pod Security Standard needs both.
        cdk8s.ApiObject.of(self.deployment).add_json_patch(
            cdk8s.JsonPatch.add("/spec/template/spec/securityContext/seccompProfile", dict(RUNTIME_DEFAULT_SECCOMP)),
            cdk8s.JsonPatch.add("/spec/template/spec/containers/0/securityContext/capabilities", {"drop": ["ALL"]}),
            cdk8s.JsonPatch.add("/spec/template/spec/initContainers/0/securityContext/capabilities", {"drop": ["ALL"]}),
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
        # The Ray pods' labels from the same source as vllm_chart.py's (config.kubernetes.app_labels).
        cfg = inputs.cfg
        oidc_alb = (OidcAlbPeers(cfg.alb_source_cidr, (cfg.vpc_cidr, cfg.secondary_cidr, LINK_LOCAL_CIDR))
                    if oidc else None)
        webui_network_policies(self, WEBUI_POD_LABELS, inputs.ingress_namespace, app_labels(names.RAYSERVICE_NAME),
                               oidc_alb)
        if oidc:
            self._publish_behind_oidc(oidc)

    def _publish_behind_oidc(self, oidc: WebUiOidc) -> None:
        """Open WebUI's Ingress on the API's ALB, and the controller's right to read the one Secret its
        authenticate-oidc action needs (the chart grants it no Secret cluster-wide: allowAllSecrets off)."""
        custom_resource(self, "open-webui-ingress", webui_ingress(oidc))
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "aws-load-balancer-controller-oidc-secret"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [WEBUI_OIDC_SECRET],
                           "verbs": ["get", "list", "watch"]}]}
        custom_resource(self, "alb-oidc-secret-reader", role)
        custom_resource(self, "alb-oidc-secret-reader-binding", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role["metadata"]["name"]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": names.AWS_LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
                          "namespace": names.AWS_LOAD_BALANCER_CONTROLLER_NAMESPACE}],
        })

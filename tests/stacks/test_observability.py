"""The ObservabilityStack as synthesized: dashboard widgets, alarm metrics and thresholds, SNS, log
retention, and the metrics agent's manifests (consistent with the serving NetworkPolicy)."""

from __future__ import annotations

import json

import pytest

from config.environments import ENVIRONMENTS
from config.names import RAY_METRICS_PORT, VLLM_NAMESPACE
from platform_constructs.observability import agent, metrics as m
from config.first_hour import dashboard_name_for
from tests.support.synth import render

LOG_GROUP = "AWS::Logs::LogGroup"


def _resources(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _dashboard(synth):
    (dash,) = _resources(synth.template("Observability"), "AWS::CloudWatch::Dashboard").values()
    return dash["Properties"]["DashboardName"], json.loads(render(dash["Properties"]["DashboardBody"]))


def _metric_rows(widget):
    """[(namespace, metric name, stat)] of a graph widget (CloudWatch's compact metric array form)."""
    rows = []
    for row in widget["properties"].get("metrics", []):
        names = [x for x in row if isinstance(x, str)]
        opts = next((x for x in row if isinstance(x, dict)), {})
        rows.append((names[0], names[1], opts.get("stat", "Average")))  # Average: the default, omitted
    return rows


@pytest.fixture(scope="module")
def dashboard(synth_dev):
    return _dashboard(synth_dev)


def test_one_dashboard_named_as_the_first_hour_commands_say(synth_dev, dashboard):
    name, _ = dashboard
    assert name == dashboard_name_for(ENVIRONMENTS["dev"])
    assert len(_resources(synth_dev.template("Observability"), "AWS::CloudWatch::Dashboard")) == 1


def test_dashboard_widgets_cover_the_serving_and_accelerator_metrics(dashboard):
    _, body = dashboard
    graphs = {w["properties"]["title"]: _metric_rows(w) for w in body["widgets"] if w["type"] == "metric"
              and "metrics" in w["properties"]}
    want = {
        "Time to first token (ms)": {(m.SERVING_NAMESPACE, m.TTFT, "p50"), (m.SERVING_NAMESPACE, m.TTFT, "p95")},
        "Inter-token latency (ms)": {(m.SERVING_NAMESPACE, m.INTER_TOKEN_LATENCY, "p50"),
                                     (m.SERVING_NAMESPACE, m.INTER_TOKEN_LATENCY, "p95")},
        "Output tokens/s": {(m.SERVING_NAMESPACE, m.OUTPUT_TOKENS_PER_SECOND, "Average")},
        "Requests running / waiting": {(m.SERVING_NAMESPACE, m.REQUESTS_RUNNING, "Maximum"),
                                       (m.SERVING_NAMESPACE, m.REQUESTS_WAITING, "Maximum")},
        "Healthy serve replicas": {(m.SERVING_NAMESPACE, m.HEALTHY_REPLICAS, "Minimum")},
        "Nodes": {(m.CONTAINER_INSIGHTS_NAMESPACE, m.NODE_COUNT, "Average")},
        "NeuronCore utilization (%)": {(m.CONTAINER_INSIGHTS_NAMESPACE, m.NEURONCORE_UTILIZATION, "Average")},
        "Neuron device memory used (bytes)": {(m.CONTAINER_INSIGHTS_NAMESPACE, m.NEURON_DEVICE_MEMORY, "Maximum")},
    }
    for title, rows in want.items():
        assert title in graphs, f"missing widget {title!r}; have {sorted(graphs)}"
        assert rows <= set(graphs[title]), (title, graphs[title])
    # Every metric is this cluster's.
    for w in body["widgets"]:
        for row in w["properties"].get("metrics", []):
            assert "ClusterName" in row and ENVIRONMENTS["dev"].cluster_name in row, row


def _alarms(synth):
    return {k: v["Properties"] for k, v in _resources(synth.template("Observability"), "AWS::CloudWatch::Alarm").items()}


def _alarm(synth, logical_prefix):
    found = [p for k, p in _alarms(synth).items() if logical_prefix in k]
    assert len(found) == 1, f"{logical_prefix}: {list(_alarms(synth))}"
    return found[0]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_ttft_alarm_uses_p95_and_the_configured_threshold(request, env):
    synth = request.getfixturevalue(f"synth_{env}")
    alarm = _alarm(synth, "TtftP95High")
    assert alarm["MetricName"] == m.TTFT and alarm["Namespace"] == m.SERVING_NAMESPACE
    assert alarm["ExtendedStatistic"] == "p95"
    assert alarm["Threshold"] == ENVIRONMENTS[env].ttft_p95_alarm_ms
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Dimensions"] == [{"Name": "ClusterName", "Value": ENVIRONMENTS[env].cluster_name}]


def test_no_healthy_replica_alarm_fires_on_zero_or_silence(synth_dev):
    alarm = _alarm(synth_dev, "NoHealthyServeReplica")
    assert (alarm["MetricName"], alarm["Statistic"]) == (m.HEALTHY_REPLICAS, "Minimum")
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching", "a dead metrics pipeline must not look healthy"


def test_neuron_runtime_error_alarm(synth_dev):
    alarm = _alarm(synth_dev, "NeuronRuntimeErrors")
    assert (alarm["Namespace"], alarm["MetricName"]) == (m.CONTAINER_INSIGHTS_NAMESPACE, m.NEURON_EXECUTION_ERRORS)
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_every_alarm_notifies_the_encrypted_topic(synth_dev):
    template = synth_dev.template("Observability")
    (topic_id, topic), = _resources(template, "AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = _alarms(synth_dev)
    assert len(alarms) == 3
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": topic_id}] and props["OKActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_log_group_of_the_app_has_the_configured_retention(request, env):
    synth = request.getfixturevalue(f"synth_{env}")
    groups = {f"{stack}/{k}": v for stack, t in synth.templates.items() for k, v in _resources(t, LOG_GROUP).items()}
    assert groups
    missing = [k for k, v in groups.items() if "RetentionInDays" not in v.get("Properties", {})]
    assert missing == [], f"log groups without retention: {missing}"
    own = [v for k, v in groups.items() if "-Observability/" in k or "ClusterCleanup" in k]
    assert len(own) == 4, "cleanup handler + provider, metrics agent, smoke test"
    assert {v["Properties"]["RetentionInDays"] for v in own} == {ENVIRONMENTS[env].log_retention_days}


def test_our_lambdas_log_to_groups_with_retention(synth_dev):
    for suffix in ("Observability", "Addons"):
        template = synth_dev.template(suffix)
        groups = _resources(template, LOG_GROUP)
        for lid, fn in _resources(template, "AWS::Lambda::Function").items():
            if "ClusterCleanup" not in lid and suffix == "Addons":
                continue
            ref = fn["Properties"].get("LoggingConfig", {}).get("LogGroup")
            assert ref and ref["Ref"] in groups, f"{suffix}/{lid} logs to a group without retention"


def test_metrics_agent_manifests(synth_dev):
    objs = {(o["kind"], o["metadata"]["name"]): o for o in synth_dev.manifests("Observability")}
    dep = objs[("Deployment", agent.NAME)]
    assert dep["metadata"]["namespace"] == agent.AGENT_NAMESPACE
    containers = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"cloudwatch-agent", "bridge"}
    env = {e["name"]: e["value"] for e in containers["bridge"]["env"]}
    assert env["POD_NAMESPACE"] == VLLM_NAMESPACE and env["METRICS_PORT"] == str(RAY_METRICS_PORT)
    assert env["CW_NAMESPACE"] == m.SERVING_NAMESPACE
    assert env["LOG_GROUP"] == agent.log_group_name(ENVIRONMENTS["dev"].cluster_name)
    config = objs[("ConfigMap", agent.NAME)]["data"]
    assert config["bridge.py"] == agent.BRIDGE_SOURCE.read_text()
    assert json.loads(config["cwagentconfig.json"])["logs"]["metrics_collected"]["emf"] == {}
    role = objs[("Role", agent.NAME)]
    assert role["metadata"]["namespace"] == VLLM_NAMESPACE
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    for c in containers.values():
        assert ":" in c["image"] and not c["image"].endswith(":latest")


def test_metrics_agent_needs_no_imds(synth_dev):
    """Nodes answer IMDS one hop only (karpenter_pools.IMDS_HOP_LIMIT): a pod that is not on the host
    network must take its region and credentials from elsewhere, or the agent publishes nothing."""
    from platform_constructs.karpenter_pools import IMDS_HOP_LIMIT
    assert IMDS_HOP_LIMIT == 1
    objs = {(o["kind"], o["metadata"]["name"]): o for o in synth_dev.manifests("Observability")}
    spec = objs[("Deployment", agent.NAME)]["spec"]["template"]["spec"]
    assert not spec.get("hostNetwork")
    (cw,) = [c for c in spec["containers"] if c["name"] == "cloudwatch-agent"]
    env = {e["name"]: e.get("value") for e in cw["env"]}
    assert env["RUN_WITH_IRSA"] == "True" and env["AWS_REGION"] == ENVIRONMENTS["dev"].region


def test_metrics_agent_identity_matches_its_service_account(synth_dev):
    template = synth_dev.template("Observability")
    assoc = [v["Properties"] for v in _resources(template, "AWS::EKS::PodIdentityAssociation").values()]
    assert {(a["Namespace"], a["ServiceAccount"]) for a in assoc} == {(agent.AGENT_NAMESPACE, agent.NAME)}


def test_serving_network_policy_admits_the_agent(synth_dev):
    """The Ray pods accept metrics scrapes only from the agent's namespace (charts engineer's policy)."""
    [policy] = [m for m in synth_dev.manifests() if m.get("kind") == "NetworkPolicy"
                and m["metadata"]["name"] == "ray-metrics-scrape"]
    [rule] = policy["spec"]["ingress"]
    namespaces = {v for peer in rule["from"] for e in peer.get("namespaceSelector", {}).get("matchExpressions", [])
                  for v in e["values"]}
    namespaces |= {v for peer in rule["from"] for v in peer.get("namespaceSelector", {}).get("matchLabels", {}).values()}
    assert agent.AGENT_NAMESPACE in namespaces, policy


def test_observability_deploys_after_whatever_creates_the_serving_namespace(synth_dev):
    """The smoke-test ConfigMap and the agent's Role live in the serving namespace: the stack creating
    that Namespace must deploy first (and be deleted after)."""
    from tests.support.synth import MANIFEST_TYPE

    manifest = json.loads((synth_dev.outdir / "manifest.json").read_text())
    cfg = ENVIRONMENTS["dev"]
    observability = f"{cfg.stack_prefix}-Observability"

    def deps(stack):  # transitive
        out, todo = set(), [stack]
        while todo:
            for d in manifest["artifacts"].get(todo.pop(), {}).get("dependencies", []):
                if d not in out:
                    out.add(d)
                    todo.append(d)
        return out

    creators = [name for name, t in synth_dev.templates.items() if name.startswith(cfg.stack_prefix)
                for r in t["Resources"].values() if r["Type"] == MANIFEST_TYPE
                and any(o.get("kind") == "Namespace" and o["metadata"]["name"] == VLLM_NAMESPACE
                        for o in json.loads(render(r["Properties"]["Manifest"])))]
    for creator in creators:
        assert creator in deps(observability), f"{observability} must depend on {creator}"


def test_our_kubernetes_objects_are_schema_valid(synth_dev):
    """The metrics agent's objects and the smoke-test ConfigMap and Job, against the cluster's Kubernetes schema."""
    import kubernetes_validate

    from platform_constructs.smoke_test.runtime import runner

    version = f"{ENVIRONMENTS['dev'].kubernetes_version}.0"
    job = runner.job_manifest("smoke-1", namespace=VLLM_NAMESPACE, configmap="smoke-test", image="python:3",
                              base_url="http://svc:8000/v1", model="m", api_key_secret="s", api_key_secret_key="k",
                              deadline_seconds=600)
    objs = synth_dev.manifests("Observability") + [job]
    assert len(objs) >= 7
    for obj in objs:
        kubernetes_validate.validate(obj, version, strict=True)
    bad = json.loads(json.dumps(job))
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)


def test_first_hour_commands_are_stack_outputs(synth_dev):
    """`cdk deploy` ends by printing the same commands `make first-hour` prints."""
    from config.first_hour import first_hour_steps

    cfg = ENVIRONMENTS["dev"]
    outputs = synth_dev.template("Observability")["Outputs"]
    steps = first_hour_steps(env_name=cfg.name, region=cfg.region, cluster_name=cfg.cluster_name,
                             dashboard_name=dashboard_name_for(cfg), model_store_bucket="b", model_id="m",
                             model_revision="r", ready_timeout="1m")
    assert steps
    for step in steps:
        assert f"FirstHour{step.key}" in outputs, step.key

"""The smoke test waits for a first deploy (issue 9, item 5): the cold-start budget, the Lambda's status
mode read from a fake Kubernetes API that enforces the synthesized Role, the CodeBuild step's polling
loop (fake clock, then the real script with a fake `aws`), and what the pipeline and stack synthesize."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from config.cold_start import (API_WAIT_SECONDS, cold_start_budget, initializing_timeout, ready_deadline_seconds,
                               smoke_step_timeout_minutes)
from config.environments import all_environments
from config.names import RAYSERVICE_NAME, VLLM_NAMESPACE
from config.presets import PRESETS
from config.secrets import API_KEY_SECRET, API_KEY_SECRET_KEY
from platform_constructs import smoke_test
from platform_constructs.smoke_test.runtime import pipeline_step, runner
from platform_constructs.smoke_test.runtime.pipeline_step import StepFailed, wait_until_ready
from tests.support.fake_clock import FakeClock

REPO = Path(__file__).resolve().parents[2]
LAMBDA_LIMIT_S = 15 * 60


# --- the budget -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(PRESETS), ids=str)
def test_every_preset_has_a_budget_of_named_phases_with_a_basis(preset):
    budget = cold_start_budget(PRESETS[preset])
    assert [p.name for p in budget.phases] == ["Karpenter + EC2 launch", "node ready", "image pull", "weights fetch",
                                               "artifact fetch", "Neuron load", "engine warm-up", "Serve ready"]
    assert all(p.seconds > 0 and p.basis for p in (*budget.phases, *budget.first_deploy))
    # The deadline covers the first deploy (one compile): tens of minutes, past one Lambda run.
    assert budget.first_deploy_seconds > 20 * 60 > budget.cold_seconds
    assert budget.budget_seconds >= budget.first_deploy_seconds and budget.budget_seconds % 300 == 0


def test_longer_context_means_a_longer_compile_and_a_longer_deadline():
    from dataclasses import replace

    p = PRESETS["inf2.8xlarge"]
    short, long_ = (cold_start_budget(replace(p, max_model_len=n)) for n in (4096, 8192))
    compile_s = [{ph.name: ph.seconds for ph in b.first_deploy}["Neuron compile"] for b in (short, long_)]
    assert compile_s[1] > compile_s[0]
    assert long_.budget_seconds >= short.budget_seconds
    assert long_.cold_seconds == short.cold_seconds  # nothing compiles on the cold path


@pytest.mark.parametrize("preset", sorted(PRESETS), ids=str)
def test_initializing_timeout_is_the_budget_in_a_form_kuberay_accepts(preset):
    value = initializing_timeout(PRESETS[preset])
    # KubeRay v1.7.0 getInitializingTimeout: a Go duration or integer seconds (the chart checks the same).
    assert re.fullmatch(r"[1-9]\d*m", value), value
    assert int(value[:-1]) * 60 == ready_deadline_seconds(PRESETS[preset])


# --- status mode: the RayService as KubeRay reports it --------------------------------------------------

def _rayservice(conditions=None, **status):
    return {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": RAYSERVICE_NAME},
            "status": {**({"conditions": conditions} if conditions is not None else {}), **status}}


READY = _rayservice([{"type": "Ready", "status": "True", "reason": "NonZeroServeEndpoints", "message": ""}],
                    serviceStatus="Running", numServeEndpoints=2,
                    activeServiceStatus={"applicationStatuses": {"llm": {"status": "RUNNING"}}})
INITIALIZING = _rayservice([{"type": "Ready", "status": "False", "reason": "Initializing",
                             "message": "RayService is initializing"}],
                           pendingServiceStatus={"applicationStatuses": {"llm": {"status": "DEPLOYING"}}})
TIMED_OUT = _rayservice([{"type": "Ready", "status": "False", "reason": "InitializingTimeout",
                          "message": "RayService failed to become ready within 80m0s"}])
PENDING_WORKER = {"metadata": {"name": "vllm-llama3-inf2-abc-worker-x"}, "status": {
    "phase": "Pending",
    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 node(s) had untolerated taint"}]}}
PULLING_HEAD = {"metadata": {"name": "vllm-llama3-inf2-abc-head-y"}, "status": {
    "phase": "Pending", "containerStatuses": [{"name": "ray-head", "ready": False,
                                               "state": {"waiting": {"reason": "ContainerCreating"}}}]}}


def test_ready_condition_true_is_ready():
    status = runner.rayservice_status(READY, [])
    assert status["ready"] is True and status["failed"] is False
    assert "serve endpoints 2" in status["summary"] and "llm RUNNING" in status["summary"]


def test_initializing_reports_what_the_pods_wait_for():
    status = runner.rayservice_status(INITIALIZING, [PENDING_WORKER, PULLING_HEAD])
    assert status["ready"] is False and status["failed"] is False
    summary = status["summary"]
    assert "Ready=False (Initializing" in summary and "llm DEPLOYING" in summary
    assert "worker-x: Pending (Unschedulable: 0/2 nodes" in summary
    assert "head-y: Pending (ray-head ContainerCreating)" in summary


def test_initializing_timeout_is_terminal():
    status = runner.rayservice_status(TIMED_OUT, [])
    assert status["failed"] is True and status["reason"] == "InitializingTimeout"


def test_no_conditions_yet_falls_back_to_the_deprecated_service_status():
    assert runner.rayservice_status(_rayservice(serviceStatus="Running"), [])["ready"] is True
    assert runner.rayservice_status(_rayservice(), [])["ready"] is False


class RbacKube:
    """A fake Kubernetes API: answers the runner's calls from its objects, after checking each call
    against RBAC rules (the Role the stack synthesizes), as the API server's authorizer would."""

    def __init__(self, rules, namespace, *, rayservice=None, pods=(), job_log=""):
        self.rules, self.namespace = rules, namespace
        self.rayservice, self.pods, self.job_log = rayservice, list(pods), job_log
        self.jobs: dict[str, dict] = {}
        self.requests: list[tuple[str, str, str, str]] = []

    def _attributes(self, method, path):
        path = path.split("?")[0]
        patterns = [
            (r"/apis/ray\.io/v1/namespaces/([^/]+)/rayservices/[^/]+", "ray.io", "rayservices", "get"),
            (r"/apis/batch/v1/namespaces/([^/]+)/jobs", "batch", "jobs", "create" if method == "POST" else "list"),
            (r"/apis/batch/v1/namespaces/([^/]+)/jobs/[^/]+", "batch", "jobs", "get"),
            (r"/api/v1/namespaces/([^/]+)/pods", "", "pods", "list"),
            (r"/api/v1/namespaces/([^/]+)/pods/[^/]+/log", "", "pods/log", "get"),
        ]
        for pattern, group, resource, verb in patterns:
            m = re.fullmatch(pattern, path)
            if m:
                return m.group(1), group, resource, verb
        raise AssertionError(f"unexpected API path {path}")

    def call(self, method, path, body=None, raw=False):
        ns, group, resource, verb = self._attributes(method, path)
        self.requests.append((ns, group, resource, verb))
        allowed = ns == self.namespace and any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in self.rules)
        if not allowed:
            raise runner.KubeApiError(f"HTTP 403: {verb} {group}/{resource} in {ns} forbidden", 403)
        if resource == "rayservices":
            if self.rayservice is None:
                raise runner.KubeApiError("HTTP 404", 404)
            return self.rayservice
        if resource == "jobs" and verb == "create":
            self.jobs[body["metadata"]["name"]] = body
            return body
        if resource == "jobs":
            return {"status": {"succeeded": 1}}
        if resource == "pods" and "job-name" in path:
            return {"items": [{"metadata": {"name": "smoke-pod"}}]}
        if resource == "pods":
            return {"items": self.pods}
        return self.job_log


@pytest.fixture(scope="module")
def synthesized_role(synth_dev):
    roles = [m for m in synth_dev.manifests("Observability") if m["kind"] == "Role"
             and m["metadata"]["name"] == smoke_test.RBAC_NAME]
    (role,) = roles
    return role


@pytest.fixture
def lambda_env(monkeypatch):
    """The smoke function's environment, with credentials that exist only for signing (moto: no AWS)."""
    for key, value in {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "CLUSTER_NAME": "llama3-inf2-dev", "CLUSTER_ENDPOINT": "https://example.invalid",
                       "CLUSTER_CA": "", "NAMESPACE": VLLM_NAMESPACE, "RAYSERVICE": RAYSERVICE_NAME,
                       "CONFIGMAP": "smoke-test", "IMAGE": "python:3", "BASE_URL": "http://svc/v1", "MODEL": "m",
                       "API_KEY_SECRET": "s", "API_KEY_SECRET_KEY": "k", "TIMEOUT_SECONDS": "840",
                       "API_WAIT_SECONDS": str(API_WAIT_SECONDS)}.items():
        monkeypatch.setenv(key, value)


def _handler_with(monkeypatch, kube, event):
    from moto import mock_aws

    monkeypatch.setattr(runner, "Kubernetes", lambda endpoint, ca, token: kube)
    with mock_aws():
        return runner.handler(event, None)


def test_status_mode_through_the_synthesized_role(monkeypatch, lambda_env, synthesized_role):
    kube = RbacKube(synthesized_role["rules"], synthesized_role["metadata"]["namespace"],
                    rayservice=INITIALIZING, pods=[PENDING_WORKER])
    status = _handler_with(monkeypatch, kube, {"mode": "status"})
    assert status["ready"] is False and "Unschedulable" in status["summary"]
    assert {(g, r, v) for _, g, r, v in kube.requests} == {("ray.io", "rayservices", "get"), ("", "pods", "list")}


def test_status_mode_before_the_rayservice_exists(monkeypatch, lambda_env, synthesized_role):
    kube = RbacKube(synthesized_role["rules"], VLLM_NAMESPACE, rayservice=None)
    status = _handler_with(monkeypatch, kube, {"mode": "status"})
    assert status["ready"] is False and status["summary"].startswith("RayService not created yet")


def test_check_mode_through_the_synthesized_role_waits_for_the_api(monkeypatch, lambda_env, synthesized_role):
    ok = runner.RESULT_MARKER + json.dumps({"ok": True, "model": "m", "answer": "4"})
    kube = RbacKube(synthesized_role["rules"], VLLM_NAMESPACE, job_log=ok)
    result = _handler_with(monkeypatch, kube, {})
    assert result["ok"] is True
    (job,) = kube.jobs.values()
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--wait-seconds") + 1] == str(API_WAIT_SECONDS)


def test_the_old_edit_policy_grant_could_not_read_rayservices(monkeypatch, lambda_env):
    """AmazonEKSEditPolicy maps to Kubernetes' `edit` ClusterRole, which names no ray.io resources."""
    edit_like = [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list"]},
                 {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]
    kube = RbacKube(edit_like, VLLM_NAMESPACE, rayservice=READY)
    with pytest.raises(runner.KubeApiError, match="403"):
        _handler_with(monkeypatch, kube, {"mode": "status"})


def test_an_unknown_mode_is_refused(monkeypatch, lambda_env):
    with pytest.raises(runner.SmokeTestFailed, match="mode: 'wait'"):
        _handler_with(monkeypatch, RbacKube([], VLLM_NAMESPACE), {"mode": "wait"})


# --- the CodeBuild step's loop --------------------------------------------------------------------------

def _scripted(statuses):
    """An invoke() answering status mode from a list (the last repeats), recording every call."""
    calls = []

    def invoke(payload, read_timeout):
        calls.append(payload)
        i = sum(1 for c in calls if c == {"mode": "status"}) - 1
        return statuses[min(i, len(statuses) - 1)]
    return invoke, calls


NOT_READY = (None, {"ready": False, "failed": False, "summary": "Ready=False (Initializing: ...); pods: worker Pending"})
IS_READY = (None, {"ready": True, "failed": False, "summary": "Ready=True"})


def test_the_step_waits_and_reports_elapsed_and_remaining_time():
    clock, lines = FakeClock(), []
    invoke, calls = _scripted([NOT_READY, NOT_READY, NOT_READY, IS_READY])
    took = wait_until_ready(invoke, deadline_seconds=3600, poll_seconds=60, clock=clock, sleep=clock.sleep,
                            log=lines.append)
    assert took == 180 and len(calls) == 4
    progress = [l for l in lines if "waiting for Ready" in l]
    assert progress[1].startswith("[1m00s elapsed, 59m00s left] waiting for Ready: Ready=False (Initializing")
    assert "pods: worker Pending" in progress[1]
    assert lines[-1].startswith("[3m00s elapsed] RayService Ready")


def test_the_step_gives_up_at_the_budget_not_before():
    clock = FakeClock()
    invoke, calls = _scripted([NOT_READY])
    with pytest.raises(StepFailed, match="not Ready within the 80m00s cold-start budget"):
        wait_until_ready(invoke, deadline_seconds=4800, poll_seconds=30, clock=clock, sleep=clock.sleep, log=lambda l: None)
    assert clock.t == 4800 and len(calls) == 4800 // 30 + 1


def test_kuberay_giving_up_fails_the_step_at_once():
    clock = FakeClock()
    invoke, calls = _scripted([NOT_READY, (None, {"ready": False, "failed": True, "reason": "InitializingTimeout",
                                                  "summary": "Ready=False (InitializingTimeout: ...)"})])
    with pytest.raises(StepFailed, match="KubeRay gave up on the RayService \\(InitializingTimeout\\)"):
        wait_until_ready(invoke, deadline_seconds=4800, poll_seconds=30, clock=clock, sleep=clock.sleep, log=lambda l: None)
    assert len(calls) == 2


def test_one_failed_status_call_is_retried_three_in_a_row_fail():
    clock = FakeClock()
    invoke, _ = _scripted([("Unhandled", {"errorMessage": "HTTP 500"}), IS_READY])
    assert wait_until_ready(invoke, deadline_seconds=600, poll_seconds=10, clock=clock, sleep=clock.sleep,
                            log=lambda l: None) == 10
    invoke, calls = _scripted([("Unhandled", {"errorMessage": "HTTP 403 forbidden"})])
    with pytest.raises(StepFailed, match="failed 3 times in a row.*403"):
        wait_until_ready(invoke, deadline_seconds=600, poll_seconds=10, clock=FakeClock(), sleep=lambda s: None,
                         log=lambda l: None)
    assert len(calls) == 3


def _fake_aws(tmp_path: Path, status_answers: list[dict], check_error: str = "None") -> Path:
    """An `aws` that answers status mode from a list (one per call, the last repeats) and check mode
    with a result; it writes the payload file and prints FunctionError as the real CLI does."""
    state = tmp_path / "answers.json"
    state.write_text(json.dumps(status_answers))
    counter = tmp_path / "count"
    script = tmp_path / "bin" / "aws"
    script.parent.mkdir()
    script.write_text(f"""#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
out, payload = args[-1], json.loads(args[args.index("--payload") + 1])
if payload.get("mode") == "status":
    answers = json.load(open({str(state)!r}))
    try:
        n = int(open({str(counter)!r}).read())
    except OSError:
        n = 0
    open({str(counter)!r}, "w").write(str(n + 1))
    json.dump(answers[min(n, len(answers) - 1)], open(out, "w"))
    print("None")
else:
    json.dump({{"ok": {check_error == "None"}, "answer": "4"}}, open(out, "w"))
    print({check_error!r})
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script.parent


def _step(tmp_path, bin_dir, **env):
    # SMOKE_AWS_CLI: a pyenv `python3` shim puts its own bin (with a real aws) first on PATH.
    full = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SMOKE_AWS_CLI=str(bin_dir / "aws"),
                SMOKE_FUNCTION="fn", SMOKE_REGION="us-east-1",
                SMOKE_READY_DEADLINE_SECONDS="600", SMOKE_POLL_SECONDS="0", **env)
    return subprocess.run(["bash", str(smoke_test.RUNTIME_DIR / "invoke.sh")], env=full, capture_output=True,
                          text=True, timeout=60)


def test_invoke_script_polls_until_ready_then_checks(tmp_path):
    bin_dir = _fake_aws(tmp_path, [NOT_READY[1], NOT_READY[1], IS_READY[1]])
    result = _step(tmp_path, bin_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("waiting for Ready") == 2 and "RayService Ready" in result.stdout
    assert "smoke check result" in result.stdout and result.stdout.rstrip().endswith("smoke test passed")


def test_invoke_script_fails_when_the_check_failed(tmp_path):
    bin_dir = _fake_aws(tmp_path, [IS_READY[1]], check_error="Unhandled")
    result = _step(tmp_path, bin_dir)
    assert result.returncode == 1 and "smoke check FAILED (Unhandled)" in result.stderr


def test_invoke_script_names_missing_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    for missing in ("SMOKE_FUNCTION", "SMOKE_READY_DEADLINE_SECONDS"):
        if missing == "SMOKE_READY_DEADLINE_SECONDS":
            env.update(SMOKE_FUNCTION="fn", SMOKE_REGION="us-east-1")
        result = subprocess.run(["bash", str(smoke_test.RUNTIME_DIR / "invoke.sh")], env=env, capture_output=True,
                                text=True)
        assert result.returncode != 0 and missing in result.stderr


# --- what the stacks synthesize -------------------------------------------------------------------------

def test_smoke_function_is_a_group_member_not_an_edit_policy_holder(synth_dev, synthesized_role):
    entries = [e["Properties"] for e in synth_dev.resources("AWS::EKS::AccessEntry", "Observability").values()]
    (entry,) = entries
    assert entry["KubernetesGroups"] == [smoke_test.KUBERNETES_GROUP]
    assert not entry.get("AccessPolicies"), "EKS access policies do not reach rayservices; the Role does"
    (binding,) = [m for m in synth_dev.manifests("Observability") if m["kind"] == "RoleBinding"
                  and m["metadata"]["name"] == smoke_test.RBAC_NAME]
    assert binding["metadata"]["namespace"] == synthesized_role["metadata"]["namespace"] == VLLM_NAMESPACE
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": smoke_test.KUBERNETES_GROUP}]
    assert binding["roleRef"]["name"] == synthesized_role["metadata"]["name"]
    verbs = {(g, r): set(rule["verbs"]) for rule in synthesized_role["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert verbs == {("ray.io", "rayservices"): {"get"}, ("batch", "jobs"): {"create", "get"},
                     ("", "pods"): {"list"}, ("", "pods/log"): {"get"}}
    assert "*" not in json.dumps(synthesized_role["rules"]) and "secrets" not in json.dumps(synthesized_role)
    assert "AmazonEKSEditPolicy" not in json.dumps(synth_dev.template("Observability"))


def _granted(rules):
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def test_the_role_grants_exactly_what_both_modes_call(monkeypatch, lambda_env, synthesized_role):
    """Every verb the Role grants is one the runner uses (status, then check mode); none is spare."""
    ok = runner.RESULT_MARKER + json.dumps({"ok": True, "model": "m", "answer": "4"})
    kube = RbacKube(synthesized_role["rules"], VLLM_NAMESPACE, rayservice=READY, pods=[PULLING_HEAD], job_log=ok)
    _handler_with(monkeypatch, kube, {"mode": "status"})
    _handler_with(monkeypatch, kube, {"mode": "check"})
    assert {(g, r, v) for _, g, r, v in kube.requests} == _granted(synthesized_role["rules"])


def test_the_function_knows_its_rayservice_and_stays_within_lambdas_limit(synth_dev):
    functions = [f["Properties"] for f in synth_dev.resources("AWS::Lambda::Function", "Observability").values()
                 if f["Properties"].get("Handler") == "runner.handler"]
    (fn,) = functions
    variables = fn["Environment"]["Variables"]
    assert variables["RAYSERVICE"] == RAYSERVICE_NAME and variables["NAMESPACE"] == VLLM_NAMESPACE
    # The Job's key: the plain-key Secret of the serving namespace, under the key the contract names.
    assert (variables["API_KEY_SECRET"], variables["API_KEY_SECRET_KEY"]) == (API_KEY_SECRET, API_KEY_SECRET_KEY)
    assert fn["Timeout"] == LAMBDA_LIMIT_S and int(variables["TIMEOUT_SECONDS"]) < LAMBDA_LIMIT_S


def test_lambda_code_leaves_out_the_codebuild_side():
    assert {"pipeline_step.py", "invoke.sh"} <= set(smoke_test.ASSET_EXCLUDE)


def test_the_runtime_sits_beside_its_construct_and_the_asset_holds_exactly_the_lambdas_files(synth_dev):
    """runtime/ holds what the construct ships; the Lambda's code asset is runner.py and check.py, nothing more."""
    from stacks.pipeline_stack import SMOKE_SCRIPT

    assert smoke_test.RUNTIME_DIR == REPO / "platform_constructs" / "smoke_test" / "runtime"
    assert {p.name for p in smoke_test.RUNTIME_DIR.iterdir() if p.name != "__pycache__"} == {
        "__init__.py", "check.py", "runner.py", "pipeline_step.py", "invoke.sh"}
    assert REPO / SMOKE_SCRIPT == smoke_test.RUNTIME_DIR / "invoke.sh"
    (fn,) = [f["Properties"] for f in synth_dev.resources("AWS::Lambda::Function", "Observability").values()
             if f["Properties"].get("Handler") == "runner.handler"]
    asset = synth_dev.outdir / f"asset.{fn['Code']['S3Key'].removesuffix('.zip')}"
    files = {p.relative_to(asset).as_posix(): p.read_bytes() for p in asset.rglob("*") if p.is_file()}
    assert files == {name: (smoke_test.RUNTIME_DIR / name).read_bytes() for name in ("check.py", "runner.py")}


@pytest.mark.parametrize("cfg", all_environments(), ids=lambda c: c.name)
def test_pipeline_smoke_step_waits_the_presets_budget(synth_dev, cfg):
    from config.project import PIPELINE_STACK_NAME
    from tests.support.synth import render

    template = synth_dev.templates[PIPELINE_STACK_NAME]
    (project,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"
                  and any(v["Name"] == "SMOKE_REGION" and v["Value"] == cfg.region
                          for v in r["Properties"]["Environment"].get("EnvironmentVariables", []))]
    variables = {v["Name"]: render(v["Value"]) for v in project["Environment"]["EnvironmentVariables"]}
    deadline = int(variables["SMOKE_READY_DEADLINE_SECONDS"])
    assert deadline == ready_deadline_seconds(cfg.preset) > 20 * 60
    # The step outlasts the wait plus one check-mode Lambda run.
    assert project["TimeoutInMinutes"] == smoke_step_timeout_minutes(cfg.preset)
    assert project["TimeoutInMinutes"] * 60 >= deadline + LAMBDA_LIMIT_S


def test_module_is_runnable_standalone():
    """CodeBuild runs the step file with a plain python3: it imports nothing of ours."""
    source = (smoke_test.RUNTIME_DIR / "pipeline_step.py").read_text()
    assert not re.search(r"^\s*(from|import) (config|tools|stacks|platform_constructs)\b", source, re.M)
    assert pipeline_step.minutes(3725) == "62m05s"


def test_lifecycle_doc_quotes_the_budget_as_computed():
    doc = (REPO / "docs" / "lifecycle.md").read_text()
    for preset in ("inf2.8xlarge", "inf2.48xlarge"):
        assert f"{preset}: {ready_deadline_seconds(PRESETS[preset]) // 60} min" in doc, preset
    assert "llama3-inf2-smoke-test" in doc and smoke_test.KUBERNETES_GROUP == "llama3-inf2-smoke-test"

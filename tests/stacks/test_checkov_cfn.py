"""checkov (cloudformation framework) on every template of the default synth -- the dev stacks, the
pipeline, its cross-region support stack and the pipeline's dev and prod stage stacks -- has no
failed check other than those listed with a reason in stacks/checkov/skips.yaml, and every listed
resource pattern still matches a failed check. Same discipline as tests/k8s_charts/test_checkov.py.

A finding is (check id, STACK/LOGICALID): the stack name without project and environment prefix, the
logical id without CDK's 8-hex-digit hash, so one skip covers the dev and prod copies of a resource.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from config.environments import all_environments
from config.project import PROJECT_CAMEL
from tests.support.checkov import run_checkov
REPO = Path(__file__).resolve().parents[2]
SKIPS = REPO / "stacks" / "checkov" / "skips.yaml"
_HASH = re.compile(r"[0-9A-F]{8}$")


@dataclass(frozen=True)
class Finding:
    check: str
    name: str  # checkov's check name
    stack: str  # full stack name
    logical_id: str
    guideline: str | None = None

    @property
    def resource(self) -> str:
        return f"{stack_kind(self.stack)}/{_HASH.sub('', self.logical_id)}"


def stack_kind(stack_name: str) -> str:
    """Llama3Inf2-dev-Network, prod-Llama3Inf2-prod-Network -> Network; Llama3Inf2-Pipeline -> Pipeline."""
    envs = "|".join(re.escape(cfg.name) for cfg in all_environments())
    match = re.fullmatch(rf"(?:(?:{envs})-)?{re.escape(PROJECT_CAMEL)}-(?:(?:{envs})-)?(.+)", stack_name)
    assert match, f"stack {stack_name} is not named <{PROJECT_CAMEL}>-[env-]<kind>"
    return match.group(1)


def load_skips(path: Path = SKIPS) -> list[dict]:
    """The skip list, validated: each entry a CKV id, a non-empty resource list and a non-empty reason."""
    entries = yaml.safe_load(path.read_text()) or []
    seen = set()
    for entry in entries:
        check = entry.get("check", "")
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{path.name}: bad check id {check!r}"
        assert str(entry.get("reason") or "").strip(), f"{path.name}: skip {check} has no reason"
        resources = entry.get("resources") or []
        assert resources, f"{path.name}: skip {check} lists no resources (no blanket skips)"
        for pattern in resources:
            assert "/" in pattern, f"{path.name}: {check} resource {pattern!r} is not STACK/LOGICALID"
            assert (check, pattern) not in seen, f"{path.name}: {check} {pattern} listed twice"
            seen.add((check, pattern))
    return entries


def unlisted(findings: set[Finding], skips: list[dict]) -> list[Finding]:
    def listed(f: Finding) -> bool:
        return any(e["check"] == f.check and any(fnmatch.fnmatchcase(f.resource, p) for p in e["resources"])
                   for e in skips)
    return sorted((f for f in findings if not listed(f)), key=lambda f: (f.check, f.stack, f.logical_id))


def stale(findings: set[Finding], skips: list[dict]) -> list[tuple[str, str]]:
    return [(e["check"], p) for e in skips for p in e["resources"]
            if not any(f.check == e["check"] and fnmatch.fnmatchcase(f.resource, p) for f in findings)]


def synthesized_templates(outdir: Path) -> dict[str, Path]:
    """{stack name: template file} of every stack in the cloud assembly and its nested (stage) assemblies."""
    out = {}
    for manifest in outdir.rglob("manifest.json"):
        for artifact_id, artifact in json.loads(manifest.read_text()).get("artifacts", {}).items():
            if artifact.get("type") == "aws:cloudformation:stack":
                props = artifact["properties"]
                out[props.get("stackName", artifact_id)] = manifest.parent / props["templateFile"]
    return out


@pytest.fixture(scope="module")
def scan(synth_dev, tmp_path_factory) -> tuple[dict[str, Path], dict]:
    templates = synthesized_templates(synth_dev.outdir)
    directory = tmp_path_factory.mktemp("checkov-cfn")
    for stack, path in templates.items():
        shutil.copyfile(path, directory / f"{stack}.template.json")
    return templates, run_checkov(directory, "cloudformation", quiet=False)


def findings(report: dict) -> set[Finding]:
    return {Finding(check=c["check_id"], name=c["check_name"], stack=Path(c["file_path"]).name.removesuffix(".template.json"),
                    logical_id=c["resource"].split(".", 1)[1], guideline=c.get("guideline"))
            for c in report["results"]["failed_checks"]}


def test_skip_list_is_well_formed():
    assert load_skips()


def test_every_template_is_scanned(scan):
    templates, report = scan
    assert report["summary"]["parsing_errors"] == 0
    scanned = {Path(c["file_path"]).name.removesuffix(".template.json")
               for kind in ("passed_checks", "failed_checks") for c in report["results"][kind]}
    assert scanned == set(templates)
    kinds = {stack_kind(s) for s in templates}
    assert {"Network", "Cluster", "Addons", "Inference", "Observability", "Pipeline"} <= kinds
    # Both environments: the dev stacks and the pipeline's prod stage.
    for cfg in all_environments():
        assert any(s.endswith(f"{PROJECT_CAMEL}-{cfg.name}-Cluster") for s in templates), cfg.name


def test_no_unlisted_findings(scan):
    _, report = scan
    found = findings(report)
    missing = unlisted(found, load_skips())
    lines = [f"{f.check} ({f.name}) on {f.resource}: stack {f.stack}, logical id {f.logical_id}"
             + (f"; fix: {f.guideline}" if f.guideline else "") for f in missing]
    assert not lines, ("fix these, or list each with a true reason in stacks/checkov/skips.yaml "
                       "(- check: ID / resources: [STACK/LOGICALID] / reason: ...):\n  " + "\n  ".join(lines))
    print(f"checkov cloudformation: passed={report['summary']['passed']} "
          f"failed(listed)={len(found)} ({len({f.resource + f.check for f in found})} check x resource)")


def test_every_skip_is_still_needed(scan):
    _, report = scan
    left = stale(findings(report), load_skips())
    assert left == [], f"these skips match no failed check any more: remove them from {SKIPS.name}: {left}"


def test_the_gates_can_fail():
    """Without checkov: an unlisted finding is reported, a skip matching nothing is stale, a reason is required."""
    found = {Finding("CKV_AWS_158", "log group KMS", "prod-Llama3Inf2-prod-Cluster", "ControlPlaneLogs95F30E24")}
    listed = [{"check": "CKV_AWS_158", "resources": ["Cluster/ControlPlaneLogs"], "reason": "x"}]
    assert [f.resource for f in found] == ["Cluster/ControlPlaneLogs"]
    assert unlisted(found, listed) == [] and stale(found, listed) == []
    assert unlisted(found, []) == sorted(found, key=lambda f: f.check)
    assert stale(set(), listed) == [("CKV_AWS_158", "Cluster/ControlPlaneLogs")]
    assert unlisted(found, [{**listed[0], "check": "CKV_AWS_117"}])  # right resource, wrong check


def test_a_skip_without_reason_is_refused(tmp_path):
    path = tmp_path / "skips.yaml"
    path.write_text("- check: CKV_AWS_158\n  resources: [Cluster/ControlPlaneLogs]\n  reason: ' '\n")
    with pytest.raises(AssertionError, match="no reason"):
        load_skips(path)
    path.write_text("- check: CKV_AWS_158\n  resources: []\n  reason: because\n")
    with pytest.raises(AssertionError, match="no resources"):
        load_skips(path)


@pytest.mark.parametrize("suffix", ["Network", "Observability"])
def test_log_groups_use_the_stack_log_key(synth_dev, suffix):
    """CKV_AWS_158 fixed, not skipped, where the stack calls encrypt_log_groups (flow logs, the
    default-SG restrictor's, serving metrics, smoke test): each log group names the stack's key, whose
    policy lets CloudWatch Logs use it for this account's and region's log groups only."""
    resources = synth_dev.template(suffix)["Resources"]
    keys = [lid for lid, r in resources.items() if r["Type"] == "AWS::KMS::Key" and lid.startswith("LogsKey")]
    assert len(keys) == 1, keys
    groups = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert groups
    for lid, group in groups.items():
        assert group["Properties"].get("KmsKeyId") == {"Fn::GetAtt": [keys[0], "Arn"]}, lid
    key = resources[keys[0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    logs_statement = next(s for s in key["KeyPolicy"]["Statement"] if "Service" in s["Principal"])
    assert logs_statement["Principal"]["Service"].startswith("logs.")
    assert "kms:EncryptionContext:aws:logs:arn" in logs_statement["Condition"]["ArnLike"]

"""Static checks on the synthesized templates: cdk-nag AwsSolutions and cfn-lint.

cdk-nag's EKS rules do not see aws_eks_v2 clusters, so test_cluster.py asserts endpoint access and
control-plane logging itself.
"""

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = ["synth_dev", "synth_prod", "synth_dev_exposed"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_cdk_nag_reports_no_unacknowledged_findings(fixture, request):
    synth = request.getfixturevalue(fixture)
    # Unacknowledged findings make synthesis itself fail (the fixture would error); check the report too.
    for report in synth.validation_report.get("pluginReports", []):
        assert report["conclusion"] == "success", report.get("violations")
        assert report.get("violations", []) == []


def test_cdk_nag_is_wired_in_and_fails_synth_on_a_finding(tmp_path):
    """Proves the check above can fail: an unacknowledged finding stops `cdk synth`."""
    from aws_cdk import Stack, aws_sqs as sqs

    from app import build_app

    app = build_app(outdir=str(tmp_path))
    network = next(c for c in app.node.children if isinstance(c, Stack) and c.stack_name.endswith("-Network"))
    sqs.Queue(network, "QueueWithoutSslOrDlq")
    with pytest.raises(Exception, match="ValidationFailed|Validation failed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-SQS4" in report and "QueueWithoutSslOrDlq" in report


_LINT_CACHE: dict[str, dict[str, list[str]]] = {}
PLATFORM_STACKS = ("Network", "Cluster", "Addons")


def _cfn_lint(synth) -> dict[str, list[str]]:
    """{template file name: [error findings]} for every template of the assembly (cfn-lint run once)."""
    key = str(synth.outdir)
    if key not in _LINT_CACHE:
        templates = sorted(Path(synth.outdir).glob("*.template.json"))
        assert len(templates) >= 3
        result = subprocess.run(
            [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", *map(str, templates)],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr  # bit flags: 2 errors, 4 warnings
        errors: dict[str, list[str]] = {t.name: [] for t in templates}
        for line in result.stdout.splitlines():
            parts = line.split(":")
            if len(parts) > 5 and parts[5].startswith("E"):
                errors[Path(parts[0]).name].append(line)
        _LINT_CACHE[key] = errors
    return _LINT_CACHE[key]


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize("suffix", PLATFORM_STACKS)
def test_cfn_lint_platform_templates_have_no_errors(fixture, suffix, request):
    errors = _cfn_lint(request.getfixturevalue(fixture))
    (name,) = [n for n in errors if n.endswith(f"-{suffix}.template.json")]
    assert errors[name] == [], "\n".join(errors[name])


@pytest.mark.parametrize("fixture", FIXTURES)
def test_cfn_lint_other_templates_have_no_errors(fixture, request):
    errors = _cfn_lint(request.getfixturevalue(fixture))
    others = {n: e for n, e in errors.items() if not n.endswith(tuple(f"-{s}.template.json" for s in PLATFORM_STACKS))}
    found = [line for lines in others.values() for line in lines]
    assert found == [], "\n".join(found)

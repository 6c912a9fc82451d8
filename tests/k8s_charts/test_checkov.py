"""checkov (kubernetes framework) on dist/ -- plus the RayService pod templates -- has no finding other
than those listed with a reason in k8s_charts/checkov/skips.yaml, and every listed skip is still needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k8s_charts import ChartInputs, write_dist
from k8s_charts.checkov_input import write_checkov_input
from tests.support.charts import OIDC_DNS
from tests.support.checkov import run_checkov

REPO = Path(__file__).resolve().parents[2]
SKIPS = REPO / "k8s_charts" / "checkov" / "skips.yaml"


def _skips() -> dict[tuple[str, str], str]:
    out = {}
    for entry in yaml.safe_load(SKIPS.read_text()):
        assert entry.get("reason", "").strip(), f"skip {entry['check']} has no reason"
        for resource in entry["resources"]:
            out[(entry["check"], resource)] = entry["reason"]
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    out = {}
    for env in ("dev", "prod"):
        dist = tmp_path_factory.mktemp(f"dist-{env}")
        assert write_dist.main(["--env", env, "--out", str(dist)]) == 0
        scan = tmp_path_factory.mktemp(f"checkov-{env}")
        write_checkov_input(dist, scan)
        out[env] = run_checkov(scan, "kubernetes")
    # dev with Open WebUI behind OIDC and DNS names: its Ingress, Role and policies are scanned too.
    dist = tmp_path_factory.mktemp("dist-dev-oidc")
    write_dist.write(dist, ChartInputs.for_environment(OIDC_DNS, write_dist.default_image(None, OIDC_DNS.region)))
    scan = tmp_path_factory.mktemp("checkov-dev-oidc")
    write_checkov_input(dist, scan)
    out["dev-oidc"] = run_checkov(scan, "kubernetes")
    return out


@pytest.mark.parametrize("env", ["dev", "prod", "dev-oidc"])
def test_no_unlisted_findings(reports, env):
    report = reports[env]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100
    failed = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    unlisted = sorted(failed - set(_skips()))
    assert unlisted == [], "fix these or list them with a reason in k8s_charts/checkov/skips.yaml"
    print(f"checkov {env}: passed={report['summary']['passed']} failed(unlisted)={len(unlisted)} "
          f"skipped(listed)={len(failed)}")


def test_every_skip_is_still_needed(reports):
    failed = {(c["check_id"], c["resource"]) for r in reports.values() for c in r["results"]["failed_checks"]}
    stale = sorted(set(_skips()) - failed)
    assert stale == [], "these skips match no finding any more: remove them from skips.yaml"


def test_ray_pods_are_scanned(reports):
    # --quiet reports failed checks only; the Ray pods have accepted findings, so they appear there.
    resources = {c["resource"] for c in reports["dev"]["results"]["failed_checks"]}
    assert "Pod.vllm.vllm-llama3-inf2-neuron-group" in resources
    assert "Pod.vllm.vllm-llama3-inf2-head" in resources

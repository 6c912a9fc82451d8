"""Synthesize the CDK app in-process once and read what it produced (templates, manifests, Helm charts).

jsii costs seconds per process, so the session fixtures in tests/conftest.py call `synthesize` once
per environment and every test reads the result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_TYPE = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_TYPE = "Custom::AWSCDK-EKS-HelmChart"


def render(value: Any) -> Any:
    """A CloudFormation value with intrinsics flattened: Fn::Join is joined, Ref/GetAtt become
    `${Name}` / `${Name.Attr}` placeholders, so JSON documents built with tokens can be parsed."""
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(render(p)) for p in parts)
        if "Ref" in value:
            return "${%s}" % value["Ref"]
        if "Fn::GetAtt" in value:
            return "${%s.%s}" % tuple(value["Fn::GetAtt"])
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    return value


@dataclass
class Synthesized:
    outdir: Path
    templates: dict[str, dict]  # stack name -> CloudFormation template
    validation_report: dict = field(default_factory=dict)

    def stack_names(self) -> list[str]:
        return sorted(self.templates)

    def template(self, suffix: str) -> dict:
        """The template of the stack whose name ends with `-{suffix}` (Network, Cluster, Addons, ...)."""
        matches = [name for name in self.templates if name.endswith(f"-{suffix}")]
        assert len(matches) == 1, f"expected one stack ending in -{suffix}, got {matches} of {self.stack_names()}"
        return self.templates[matches[0]]

    def resources(self, type_: str, suffix: str | None = None) -> dict[str, dict]:
        """{logical id: resource} of a CloudFormation type, in one stack or all of them."""
        templates = [self.template(suffix)] if suffix else list(self.templates.values())
        return {
            lid: res for t in templates for lid, res in t.get("Resources", {}).items() if res.get("Type") == type_
        }

    def manifests(self, suffix: str | None = None) -> list[dict]:
        """Every Kubernetes object applied with KubernetesManifest (cluster.add_manifest)."""
        out: list[dict] = []
        for res in self.resources(MANIFEST_TYPE, suffix).values():
            out.extend(json.loads(render(res["Properties"]["Manifest"])))
        return out

    def manifest(self, kind: str, name: str) -> dict:
        found = [m for m in self.manifests() if m.get("kind") == kind and m.get("metadata", {}).get("name") == name]
        assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def helm_charts(self, suffix: str | None = None) -> dict[str, dict]:
        """{release: properties (Values parsed)} of every Helm chart the stacks install."""
        out = {}
        for res in self.resources(HELM_TYPE, suffix).values():
            props = dict(res["Properties"])
            if "Values" in props:
                props["Values"] = json.loads(render(props["Values"]))
            out[props["Release"]] = props
        return out


REPO = Path(__file__).resolve().parents[2]


def cdk_json_context() -> dict:
    """The feature flags in cdk.json, which the CDK CLI passes to the app: tests synthesize with them too."""
    return dict(json.loads((REPO / "cdk.json").read_text()).get("context", {}))


def synthesize(context: dict, outdir: Path) -> Synthesized:
    from app import build_app  # imported late: importing aws_cdk starts the jsii runtime

    assembly = build_app(context={**cdk_json_context(), **context}, outdir=str(outdir)).synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(outdir=outdir, templates=templates, validation_report=report)


_TOKEN = re.compile(r"\$\{[^}]+\}")


def has_token(text: str) -> bool:
    return bool(_TOKEN.search(text))

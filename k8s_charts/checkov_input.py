"""Manifests for checkov: dist/ plus the RayService's head and worker pod templates as Pods.

checkov's kubernetes framework knows built-in kinds only; without this it would never look at the pods
that run the model. Each template becomes a Pod named <rayservice>-<group> in the RayService's namespace.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def ray_pods(manifests: list[dict]) -> list[dict]:
    pods = []
    for rs in (m for m in manifests if m.get("kind") == "RayService"):
        cluster = rs["spec"]["rayClusterConfig"]
        groups = [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])]
        for group, spec in groups:
            template = spec["template"]
            pods.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{rs['metadata']['name']}-{group}", "namespace": rs["metadata"]["namespace"],
                             "labels": template.get("metadata", {}).get("labels", {})},
                "spec": template["spec"],
            })
    return pods


def write_checkov_input(dist: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    manifests = []
    for path in sorted(dist.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        manifests += docs
        target = out / path.name
        target.write_text(path.read_text())
        written.append(target)
    pods = out / "99-rayservice-pods.yaml"
    pods.write_text(yaml.safe_dump_all(ray_pods(manifests), sort_keys=False))
    written.append(pods)
    return written

"""Write the inference charts as plain manifests (`kubectl apply -f dist/` or GitOps), offline.

    python -m k8s_charts.write_dist --env dev --out dist [--image URI] [--ingress-namespace NS]

Without --model-store-bucket, the model store is the bucket the inference stack names for the
environment (config/model_store.py bucket_name, with the placeholder account when it has none).
Without --image, the serving image is the project's ECR repository (config/project.py
SERVING_REPOSITORY) in the environment's account, tagged with a hash of serving/ (build and push it
with that tag, or pass --image).
Files are numbered in apply order: namespaces and workloads first, then the ExternalSecrets.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cdk8s
import yaml

from config.environments import ConfigError, load_config
from config.project import SERVING_REPOSITORY
from k8s_charts.app import build_charts
from k8s_charts.inputs import PLACEHOLDER_ACCOUNT, ChartInputs

REPO_ROOT = Path(__file__).resolve().parents[1]


def serving_source_hash() -> str:
    """A content hash of serving/ (like the CDK asset hash): the tag changes when the code does."""
    digest = hashlib.sha256()
    root = REPO_ROOT / "serving"
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def default_image(account: str | None, region: str) -> str:
    return f"{account or PLACEHOLDER_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{SERVING_REPOSITORY}:src-{serving_source_hash()}"


def write(out: Path, inputs: ChartInputs) -> list[Path]:
    app = cdk8s.App(outdir=str(out))
    charts = build_charts(app, inputs)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    written = []
    for name, chart in charts.in_apply_order():
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(chart.to_json(), sort_keys=False))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="environment name from config/environments.py (default: dev)")
    parser.add_argument("--out", default="dist", help="output folder (its *.yaml files are replaced)")
    parser.add_argument("--image", default=None, help="serving image URI with a pinned tag or digest")
    parser.add_argument("--model-store-bucket", default=None,
                        help="the model store's bucket (default: the name the inference stack gives it)")
    parser.add_argument("--ingress-namespace", default=None, help="namespace of an ingress controller allowed in")
    args = parser.parse_args(argv)
    try:
        cfg = load_config({"env": args.env} if args.env else {})
        image = args.image or default_image(cfg.account, cfg.region)
        extra = {"model_store_bucket": args.model_store_bucket} if args.model_store_bucket else {}
        inputs = ChartInputs.for_environment(cfg, image, ingress_namespace=args.ingress_namespace, **extra)
        paths = write(Path(args.out), inputs)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} files for env {cfg.name} to {args.out}/: " + ", ".join(p.name for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CDK feature flags: where the recommended values come from, and the ones this app does not apply.

cdk.json sets every flag that `cdk init` would write for a new app (the installed aws-cdk-lib's
`recommended-feature-flags.json`). It sets the recommended value, except for the flags in
NOT_APPLIED, which cdk.json sets explicitly to the value given here, for the reason given here.
docs/feature-flags.md explains the choice; tests/config/test_feature_flags.py fails while a
recommended flag is missing from cdk.json, so a CDK upgrade that adds flags waits for a decision.

    .venv/bin/python -m config.feature_flags     # lists flags cdk.json leaves undecided (none: exit 0)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# flag -> (the value cdk.json sets instead of the recommended one, why)
NOT_APPLIED: dict[str, tuple[Any, str]] = {
    "@aws-cdk/core:defaultCrossStackReferences": (
        "strong",
        "'weak' replaces every Export/Fn::ImportValue between the Network, Cluster, Addons, Inference and "
        "Observability stacks with Fn::GetStackOutput. CloudFormation then no longer stops the Network or "
        "Cluster stack (VPC, subnets, EKS cluster) from being replaced or deleted while later stacks use "
        "them, and a deployed environment cannot switch in one deployment (the producer would drop exports "
        "still imported): CDK's path is 'both', deploy everywhere, then 'weak'. Set to 'strong' explicitly, "
        "as CDK's own synth warning suggests.",
    ),
    "@aws-cdk/aws-lambda:useCdkManagedLogGroup": (
        False,
        "The LambdaLogRetention aspect (platform_constructs/observability/retention.py) already gives every "
        "Lambda function a log group with the environment's retention and points LoggingConfig at it. "
        "The flag would add a second, unused /aws/lambda/<function> log group (731 days, Retain) for each "
        "kubectl-provider function, left behind when a stack is deleted.",
    ),
}


def cdk_lib_tarball() -> Path:
    """The aws-cdk-lib jsii assembly bundled with the installed Python package (found without
    importing aws_cdk, which would start the jsii runtime)."""
    spec = importlib.util.find_spec("aws_cdk")
    assert spec is not None and spec.submodule_search_locations, "aws-cdk-lib is not installed"
    version = importlib.metadata.version("aws-cdk-lib")
    for location in spec.submodule_search_locations:
        tarball = Path(location) / "_jsii" / f"aws-cdk-lib@{version}.jsii.tgz"
        if tarball.exists():
            return tarball
    raise FileNotFoundError(f"aws-cdk-lib@{version}.jsii.tgz not found under {spec.submodule_search_locations}")


def recommended_flags() -> dict[str, Any]:
    """{flag: recommended value}: what `cdk init` writes into a new app's cdk.json for this version."""
    with tarfile.open(cdk_lib_tarball()) as tar:
        member = tar.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return json.load(member)


def cdk_json_context(path: Path = REPO / "cdk.json") -> dict[str, Any]:
    return dict(json.loads(path.read_text()).get("context", {}))


def expected_value(flag: str, recommended: Any) -> Any:
    return NOT_APPLIED[flag][0] if flag in NOT_APPLIED else recommended


def undecided(context: dict[str, Any] | None = None) -> dict[str, str]:
    """{flag: problem} for every recommended flag cdk.json does not set to its decided value."""
    context = cdk_json_context() if context is None else context
    problems = {}
    for flag, recommended in recommended_flags().items():
        want = expected_value(flag, recommended)
        if flag not in context:
            problems[flag] = f"not set (recommended {json.dumps(recommended)}): apply it or add it to NOT_APPLIED"
        elif context[flag] != want:
            problems[flag] = f"cdk.json sets {json.dumps(context[flag])}, decided value is {json.dumps(want)}"
    return problems


if __name__ == "__main__":
    found = undecided()
    for flag, problem in found.items():
        print(f"{flag}: {problem}")
    print(f"aws-cdk-lib {importlib.metadata.version('aws-cdk-lib')}: {len(recommended_flags())} recommended flags, "
          f"{len(found)} undecided, {len(NOT_APPLIED)} not applied (config/feature_flags.py)")
    sys.exit(1 if found else 0)

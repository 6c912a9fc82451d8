"""Shared fixtures: the CDK app synthesized once per test session (dev, and prod on demand).

    synth_dev / synth_prod -> tests.support.synth.Synthesized
        .outdir        the cloud assembly directory (for cfn-lint)
        .templates     {stack name: template}; .template("Cluster") picks one by suffix
        .manifests()   Kubernetes objects applied by the stacks; .helm_charts() {release: props}
"""

from __future__ import annotations

import os

import pytest

# jsii prints a banner about the Node.js version on every start; CDK CLI telemetry stays off.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20,22")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "18,20,22")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

from tests.support.synth import Synthesized, synthesize  # noqa: E402
from tests.support.local_server import keyed_local_endpoint, local_endpoint, real_local_endpoint  # noqa: E402,F401  (session-wide servers)
from tests.support.charts import synthesized  # noqa: E402,F401  (every environment and preset, once)


@pytest.fixture(scope="session")
def synth_dev_exposed(tmp_path_factory) -> Synthesized:
    """dev with Open WebUI behind OIDC and DNS names (tests.support.charts OIDC_DNS), synthesized once."""
    from config import environments
    from tests.support.charts import OIDC_DNS

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(environments.ENVIRONMENTS, "dev", OIDC_DNS)
        return synthesize({}, tmp_path_factory.mktemp("cdk-out-dev-exposed"))


@pytest.fixture(scope="session")
def synth_dev(tmp_path_factory) -> Synthesized:
    """The default app (`cdk synth` with no context: env=dev), synthesized once."""
    return synthesize({}, tmp_path_factory.mktemp("cdk-out-dev"))


@pytest.fixture(scope="session")
def synth_prod(tmp_path_factory) -> Synthesized:
    """`cdk synth -c env=prod`, synthesized once."""
    return synthesize({"env": "prod"}, tmp_path_factory.mktemp("cdk-out-prod"))

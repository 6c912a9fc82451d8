"""cdk8s charts of the inference layer: RayService (vLLM on Neuron), Open WebUI, secrets, NetworkPolicies.

`build_charts(app, inputs)` adds them to a cdk8s App; the CDK inference stack deploys them with
`cluster.add_cdk8s_chart`, and `python -m k8s_charts.write_dist` writes them as plain manifests.
"""

from k8s_charts.app import Charts, build_charts
from k8s_charts.inputs import ChartInputs

__all__ = ["Charts", "ChartInputs", "build_charts"]

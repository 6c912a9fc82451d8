"""Assemble the inference charts in one cdk8s App, in the order they must be applied."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s

from k8s_charts.inputs import ChartInputs
from k8s_charts.secrets_chart import SecretsChart
from k8s_charts.vllm_chart import VllmChart
from k8s_charts.webui_chart import WebUiChart


@dataclass(frozen=True)
class Charts:
    vllm: VllmChart
    webui: WebUiChart
    secrets: SecretsChart

    def in_apply_order(self) -> list[tuple[str, cdk8s.Chart]]:
        # Namespaces (in the first two) before the ExternalSecrets that live in them.
        return [("10-vllm", self.vllm), ("20-open-webui", self.webui), ("30-secrets", self.secrets)]


def build_charts(app: cdk8s.App, inputs: ChartInputs) -> Charts:
    vllm = VllmChart(app, "vllm", inputs)
    webui = WebUiChart(app, "open-webui", inputs)
    secrets = SecretsChart(app, "secrets", inputs)
    secrets.add_dependency(vllm, webui)
    return Charts(vllm=vllm, webui=webui, secrets=secrets)

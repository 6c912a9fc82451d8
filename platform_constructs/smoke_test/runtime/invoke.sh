#!/usr/bin/env bash
# Post-deployment step of the pipeline: wait for the environment's RayService to be Ready (polling the
# smoke-test Lambda's status mode for as long as the cold-start budget allows), then run the smoke
# check (an in-cluster Job: /v1/models and one chat completion); fail when either fails.
#   SMOKE_FUNCTION                function name or ARN (cross-account: the ARN)
#   SMOKE_REGION                  the environment's region
#   SMOKE_READY_DEADLINE_SECONDS  the cold-start budget (config/cold_start.py; the pipeline sets it)
#   SMOKE_POLL_SECONDS            optional, default 30
# Needs the AWS CLI and python3 (both in the CodeBuild standard images). Logic: pipeline_step.py beside it.
set -euo pipefail
: "${SMOKE_FUNCTION:?set SMOKE_FUNCTION to the smoke-test function name or ARN}"
: "${SMOKE_REGION:?set SMOKE_REGION to the environment region}"
: "${SMOKE_READY_DEADLINE_SECONDS:?set SMOKE_READY_DEADLINE_SECONDS to the cold-start budget in seconds}"
exec python3 "$(dirname "$0")/pipeline_step.py"

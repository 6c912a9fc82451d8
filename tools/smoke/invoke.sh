#!/usr/bin/env bash
# Post-deployment step of the pipeline: invoke an environment's smoke-test Lambda (it runs
# tools/smoke/check.py as a Job inside that environment's cluster) and fail when it failed.
#   SMOKE_FUNCTION  function name or ARN (cross-account: the ARN)
#   SMOKE_REGION    the environment's region
# Needs only the AWS CLI (present in the CodeBuild standard images).
set -euo pipefail
: "${SMOKE_FUNCTION:?set SMOKE_FUNCTION to the smoke-test function name or ARN}"
: "${SMOKE_REGION:?set SMOKE_REGION to the environment region}"

out="$(mktemp)"
function_error="$(aws lambda invoke \
  --function-name "$SMOKE_FUNCTION" --region "$SMOKE_REGION" \
  --cli-read-timeout 900 --cli-connect-timeout 30 \
  --cli-binary-format raw-in-base64-out --payload '{}' \
  --query FunctionError --output text "$out")"
echo "smoke test result ($SMOKE_FUNCTION, $SMOKE_REGION):"
cat "$out"; echo
if [ "$function_error" != "None" ] && [ -n "$function_error" ]; then
  echo "smoke test FAILED ($function_error): the endpoint answered wrongly or not at all; see the result above" >&2
  exit 1
fi
echo "smoke test passed"

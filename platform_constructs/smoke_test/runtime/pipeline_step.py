"""The pipeline's post-deployment smoke step (run by invoke.sh, beside this file, in CodeBuild).

A first deploy ends long before the first replica serves: node launch, image pull, weights, Neuron
compile (config/cold_start.py). One Lambda run lasts at most 15 minutes, so this step loops instead:

  1. every SMOKE_POLL_SECONDS, invoke the smoke Lambda in status mode ({"mode": "status"}) and print
     what the RayService waits for, with the elapsed and remaining time of the cold-start budget;
     stop when it is Ready, fail when KubeRay gave up (InitializingTimeout) or the budget is spent;
  2. invoke it in check mode: an in-cluster Job waits for the API, then checks /v1/models and one chat
     completion.

Environment: SMOKE_FUNCTION (name or ARN), SMOKE_REGION, SMOKE_READY_DEADLINE_SECONDS (the budget),
SMOKE_POLL_SECONDS (default 30), SMOKE_AWS_CLI (default `aws` from PATH). Standard library + the AWS
CLI (both in CodeBuild's standard image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable

MAX_CONSECUTIVE_ERRORS = 3  # a status call that errors this often in a row is not a passing fault
STATUS_READ_TIMEOUT = 120
CHECK_READ_TIMEOUT = 960  # the Lambda's 15 minutes and its start


class StepFailed(RuntimeError):
    pass


def minutes(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def aws_invoke(function: str, region: str, payload: dict, read_timeout: int) -> tuple[str | None, dict | str]:
    """(function error or None, the returned payload) of one synchronous `aws lambda invoke`."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        proc = subprocess.run(
            [os.environ.get("SMOKE_AWS_CLI", "aws"), "lambda", "invoke", "--function-name", function, "--region", region,
             "--cli-read-timeout", str(read_timeout), "--cli-connect-timeout", "30",
             "--cli-binary-format", "raw-in-base64-out", "--payload", json.dumps(payload),
             "--query", "FunctionError", "--output", "text", out.name],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            return f"aws lambda invoke exited {proc.returncode}: {proc.stderr.strip()[-500:]}", ""
        body = out.read()
    error = proc.stdout.strip()
    try:
        parsed: dict | str = json.loads(body)
    except ValueError:
        parsed = body
    return (None if error in ("", "None") else error), parsed


Invoke = Callable[[dict, int], "tuple[str | None, dict | str]"]


def wait_until_ready(invoke: Invoke, *, deadline_seconds: float, poll_seconds: float,
                     clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                     log: Callable[[str], None] = print) -> float:
    """Poll status mode until Ready; returns the seconds it took. Raises StepFailed otherwise."""
    start = clock()
    errors = 0
    log(f"waiting up to {minutes(deadline_seconds)} (the cold-start budget, config/cold_start.py) for the "
        "RayService to be Ready, polling every %ds" % poll_seconds)
    while True:
        error, status = invoke({"mode": "status"}, STATUS_READ_TIMEOUT)
        elapsed = clock() - start
        remaining = deadline_seconds - elapsed
        if error or not isinstance(status, dict):
            errors += 1
            why = f"{error}: {json.dumps(status)[:500]}" if error else f"not a status: {status!r:.500}"
            log(f"[{minutes(elapsed)} elapsed, {minutes(remaining)} left] status call failed "
                f"({errors}/{MAX_CONSECUTIVE_ERRORS}): {why}")
            if errors >= MAX_CONSECUTIVE_ERRORS:
                raise StepFailed(f"the smoke function's status mode failed {errors} times in a row: {why}")
        else:
            errors = 0
            if status.get("ready"):
                log(f"[{minutes(elapsed)} elapsed] RayService Ready: {status.get('summary', '')}")
                return elapsed
            if status.get("failed"):
                raise StepFailed(f"KubeRay gave up on the RayService ({status.get('reason')}): {status.get('summary')}")
            log(f"[{minutes(elapsed)} elapsed, {minutes(remaining)} left] waiting for Ready: {status.get('summary', '')}")
        if remaining <= 0:
            last = status.get("summary") if isinstance(status, dict) else status
            raise StepFailed(f"the RayService was not Ready within the {minutes(deadline_seconds)} cold-start "
                             f"budget (config/cold_start.py); last status: {last}")
        sleep(min(poll_seconds, max(remaining, 1)))


def run_check(invoke: Invoke, log: Callable[[str], None] = print) -> dict:
    error, result = invoke({"mode": "check"}, CHECK_READ_TIMEOUT)
    log(f"smoke check result: {json.dumps(result) if isinstance(result, dict) else result}")
    if error:
        raise StepFailed(f"smoke check FAILED ({error}): the endpoint answered wrongly or not at all; see above")
    return result if isinstance(result, dict) else {}


def main() -> int:
    env = os.environ
    missing = [k for k in ("SMOKE_FUNCTION", "SMOKE_REGION", "SMOKE_READY_DEADLINE_SECONDS") if not env.get(k)]
    if missing:
        print(f"error: set {', '.join(missing)} (the pipeline's smoke step sets them)", file=sys.stderr)
        return 2
    function, region = env["SMOKE_FUNCTION"], env["SMOKE_REGION"]

    def invoke(payload: dict, read_timeout: int):
        return aws_invoke(function, region, payload, read_timeout)

    print(f"smoke test of {function} ({region})", flush=True)
    try:
        wait_until_ready(invoke, deadline_seconds=float(env["SMOKE_READY_DEADLINE_SECONDS"]),
                         poll_seconds=float(env.get("SMOKE_POLL_SECONDS", "30")),
                         log=lambda line: print(line, flush=True))
        run_check(invoke, log=lambda line: print(line, flush=True))
    except StepFailed as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

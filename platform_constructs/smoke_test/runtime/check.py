"""Smoke test of an OpenAI-compatible endpoint: `/v1/models` lists the model, and one chat completion
answers a question whose answer is known. Exits 1 with one line saying what was wrong.

Standard library only: the pipeline runs it in a plain `python` container inside the cluster (an
in-cluster Job started by the smoke-test Lambda, see runner.py beside it), and anyone can run it
against local mode or a port-forward:

    python platform_constructs/smoke_test/runtime/check.py --base-url http://127.0.0.1:8000/v1 --model NousResearch/Meta-Llama-3-8B-Instruct

The API key comes from $OPENAI_API_KEY (the Job reads it from the synced Kubernetes Secret); it is
never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

QUESTION = "What is 2 + 2? Reply with only the number."
EXPECTED = "4"
RESULT_MARKER = "SMOKE-RESULT "  # the line the Lambda looks for in the Job's log


class SmokeFailure(RuntimeError):
    pass


def _request(url: str, api_key: str | None, body: dict | None = None, timeout: float = 300.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as exc:
        raise SmokeFailure(f"{url}: HTTP {exc.code} {exc.reason}: {exc.read()[:300].decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SmokeFailure(f"{url}: cannot connect ({exc})") from None
    try:
        return json.loads(payload)
    except ValueError:
        raise SmokeFailure(f"{url}: the answer is not JSON: {payload[:200]!r}") from None


def check_models(base_url: str, api_key: str | None, model: str | None) -> str:
    body = _request(f"{base_url}/models", api_key)
    ids = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)] if isinstance(body, dict) else []
    if not ids:
        raise SmokeFailure(f"{base_url}/models lists no model: {json.dumps(body)[:300]}")
    if model and model not in ids:
        raise SmokeFailure(f"{base_url}/models does not list {model!r}; it lists {ids}")
    return model or ids[0]


def check_chat(base_url: str, api_key: str | None, model: str) -> str:
    body = _request(f"{base_url}/chat/completions", api_key, {
        "model": model,
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "max_tokens": 16,
    })
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise SmokeFailure(f"chat completion has no choices[0].message.content: {json.dumps(body)[:300]}") from None
    if not isinstance(content, str) or EXPECTED not in content:
        raise SmokeFailure(f"wrong answer to {QUESTION!r}: expected {EXPECTED!r} in {content!r}")
    if body.get("model") not in (None, model):
        raise SmokeFailure(f"chat completion answered as model {body.get('model')!r}, asked {model!r}")
    usage = body.get("usage") or {}
    if not usage.get("completion_tokens"):
        raise SmokeFailure(f"chat completion reports no completion tokens: usage={usage}")
    return content.strip()


def wait_for_models(base_url: str, api_key: str | None, model: str | None, *, wait_seconds: float,
                    poll_seconds: float = 10.0, clock=time.monotonic, sleep=time.sleep, log=print) -> str:
    """check_models, retried until it passes or `wait_seconds` are over: right after the RayService turns
    Ready the Service may still route to a proxy whose app is starting (connection refused, 503, 404)."""
    start = clock()
    while True:
        try:
            return check_models(base_url, api_key, model)
        except SmokeFailure as exc:
            elapsed = clock() - start
            # A wrong key does not heal by waiting: fail at once.
            if elapsed + poll_seconds > wait_seconds or "HTTP 401" in str(exc) or "HTTP 403" in str(exc):
                raise
            log(f"waiting for the API ({elapsed:.0f} s of {wait_seconds:.0f} s): {exc}", flush=True)
            sleep(poll_seconds)


def run(base_url: str, api_key: str | None, model: str | None, *, wait_seconds: float = 0.0, **wait) -> dict:
    base_url = base_url.rstrip("/")
    start = time.monotonic()
    served = wait_for_models(base_url, api_key, model, wait_seconds=wait_seconds, **wait)
    answer = check_chat(base_url, api_key, served)
    return {"ok": True, "model": served, "answer": answer, "seconds": round(time.monotonic() - start, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"))
    parser.add_argument("--model", default=os.environ.get("OPENAI_MODEL") or None,
                        help="model id /v1/models must list (default: the first one listed)")
    parser.add_argument("--wait-seconds", type=float, default=0.0,
                        help="retry /v1/models for up to this long while the endpoint starts (default: no retry)")
    parser.add_argument("--poll-seconds", type=float, default=10.0, help="pause between those retries")
    args = parser.parse_args(argv)
    try:
        result = run(args.base_url, os.environ.get("OPENAI_API_KEY") or None, args.model,
                     wait_seconds=args.wait_seconds, poll_seconds=args.poll_seconds)
    except SmokeFailure as exc:
        print(RESULT_MARKER + json.dumps({"ok": False, "error": str(exc)}))
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print(RESULT_MARKER + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the OpenAI-compatible endpoint is, and what to tell the user when talking to it fails.

Shared by the example client and the benchmark so both take the same flags, read the same
standard OPENAI_* variables and explain a failure the same way (one line, no traceback).
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from dataclasses import dataclass

import openai

from pathlib import Path

from config.names import LOCALHOST, LOCAL_SERVE_URL
from config.secrets import LOCAL_API_KEY_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]

# Local mode (`make serve-local`) and a `kubectl port-forward` of the serve Service both answer here.
DEFAULT_BASE_URL = LOCAL_SERVE_URL
# vLLM's convention for "no key configured"; the SDK refuses an empty key.
PLACEHOLDER_API_KEY = "EMPTY"


class EndpointError(RuntimeError):
    """Talking to the endpoint failed; the message says what happened and what to do."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str
    model: str | None  # None: use the one model the endpoint serves
    # PEM file of the CA that signed an https endpoint's certificate (a private CA of an internal ALB);
    # None: the system's trust store.
    ca_bundle: str | None = None

    def _verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else True

    def client(self, *, timeout: float = 120.0, max_retries: int = 0) -> openai.OpenAI:
        http_client = openai.DefaultHttpxClient(verify=self._verify()) if self.ca_bundle else None
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=timeout, max_retries=max_retries,
                             http_client=http_client)

    def async_client(self, *, timeout: float = 600.0, max_retries: int = 0) -> openai.AsyncOpenAI:
        http_client = openai.DefaultAsyncHttpxClient(verify=self._verify()) if self.ca_bundle else None
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=timeout,
                                  max_retries=max_retries, http_client=http_client)


def add_endpoint_arguments(parser: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """--base-url, --api-key and --model; each falls back to the standard OpenAI variable."""
    parser.add_argument(f"--{prefix}base-url", default=None,
                        help=f"OpenAI-compatible base URL (default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL})")
    parser.add_argument(f"--{prefix}api-key", default=None,
                        help=f"API key (default: $OPENAI_API_KEY, else local mode's {LOCAL_API_KEY_FILE} for a "
                             "127.0.0.1 URL, else a placeholder)")
    parser.add_argument(f"--{prefix}model", default=None,
                        help="served model name (default: $OPENAI_MODEL, else the endpoint's only model)")
    parser.add_argument(f"--{prefix}ca-bundle", default=None,
                        help="PEM file of the CA that signed an https endpoint's certificate (default: "
                             "$SSL_CERT_FILE, else the system's trust store)")


def local_key(base_url: str, key_file: Path = REPO_ROOT / LOCAL_API_KEY_FILE) -> str:
    """Local mode's generated key (serving/local/serve.py) for a URL on this machine, if it exists;
    otherwise the placeholder (an endpoint without keys, or one that will answer 401 with a hint)."""
    if f"//{LOCALHOST}:" in base_url or "//localhost:" in base_url:
        try:
            return key_file.read_text().strip() or PLACEHOLDER_API_KEY
        except OSError:
            pass
    return PLACEHOLDER_API_KEY


def endpoint_from_args(args: argparse.Namespace, *, prefix: str = "") -> Endpoint:
    attr = prefix.replace("-", "_")
    base_url = getattr(args, f"{attr}base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if not base_url.startswith(("http://", "https://")):
        raise EndpointError(f"--{prefix}base-url: {base_url!r} is not an http(s) URL; e.g. {DEFAULT_BASE_URL}")
    api_key = getattr(args, f"{attr}api_key") or os.environ.get("OPENAI_API_KEY") or local_key(base_url)
    model = getattr(args, f"{attr}model") or os.environ.get("OPENAI_MODEL") or None
    ca_bundle = getattr(args, f"{attr}ca_bundle", None) or os.environ.get("SSL_CERT_FILE") or None
    if ca_bundle and not Path(ca_bundle).is_file():
        raise EndpointError(f"--{prefix}ca-bundle: {ca_bundle} is not a file; give the PEM file of the endpoint's CA")
    if ca_bundle and not base_url.startswith("https://"):
        ca_bundle = None  # plain http: nothing to verify
    return Endpoint(base_url=base_url.rstrip("/"), api_key=api_key, model=model, ca_bundle=ca_bundle)


def served_models(endpoint: Endpoint) -> list[openai.types.Model]:
    try:
        return list(endpoint.client(timeout=30).models.list())
    except openai.APIError as exc:
        raise EndpointError(explain(exc, endpoint)) from None


def resolve_model(endpoint: Endpoint) -> tuple[str, str | None]:
    """(served model name, the model's `root` as the server reports it, e.g. a local path).

    Checks that the requested model is served, so a typo fails here with the list of names
    rather than as a 404 in the middle of a benchmark.
    """
    models = served_models(endpoint)
    if not models:
        raise EndpointError(f"{endpoint.base_url} serves no model yet; is the deployment still loading it?")
    by_id = {m.id: m for m in models}
    if endpoint.model is None:
        if len(models) > 1:
            raise EndpointError(f"--model: {endpoint.base_url} serves several models; pick one of {sorted(by_id)}")
        chosen = models[0]
    elif endpoint.model in by_id:
        chosen = by_id[endpoint.model]
    else:
        raise EndpointError(
            f"--model: {endpoint.model!r} is not served at {endpoint.base_url}; served: {sorted(by_id)}")
    # vLLM adds `root` (the path or repo the weights came from); other servers may not.
    root = getattr(chosen, "root", None) or (chosen.model_extra or {}).get("root")
    return chosen.id, root


def explain(exc: BaseException, endpoint: Endpoint) -> str:
    """One line for the user: what went wrong talking to the endpoint and how to fix it."""
    url = endpoint.base_url
    if isinstance(exc, openai.APITimeoutError):
        return f"{url} did not answer in time; the server may be overloaded or still starting"
    if isinstance(exc, openai.APIConnectionError) and _certificate_failure(exc):
        return (f"cannot verify the TLS certificate of {url}: pass the PEM file of the CA that signed it with "
                f"--ca-bundle (or SSL_CERT_FILE); the ALB's certificate is the one in alb_certificate_arn")
    if isinstance(exc, openai.APIConnectionError):
        return (f"cannot reach {url}: is the server running? Start local mode with `make serve-local`, "
                f"or port-forward the deployed endpoint (`make first-hour` prints the command)")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return (f"{url} rejected the API key (HTTP {exc.status_code}); set OPENAI_API_KEY or --api-key "
                f"to a key the endpoint accepts")
    if isinstance(exc, openai.NotFoundError):
        model = endpoint.model or "the requested model"
        return (f"{url} answered 404 for {model}: the model is not served there or the base URL lacks /v1; "
                f"list the served models with `curl {url}/models`")
    if isinstance(exc, openai.APIStatusError):
        return f"{url} answered HTTP {exc.status_code}: {_short(exc.message)}"
    return f"{url}: {type(exc).__name__}: {_short(str(exc))}"


def _certificate_failure(exc: BaseException) -> bool:
    """Whether a connection error was a failed TLS certificate verification (anywhere in its causes)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def report_failure(exc: EndpointError | openai.APIError, endpoint: Endpoint | None) -> int:
    """Print the one-line explanation of a failed call on stderr; returns the CLI's exit code (1)."""
    message = str(exc) if isinstance(exc, EndpointError) or endpoint is None else explain(exc, endpoint)
    print(f"error: {message}", file=sys.stderr)
    return 1


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

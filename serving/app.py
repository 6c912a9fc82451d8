"""Ray Serve application: one deployment whose replicas each run a vLLM engine and vLLM's OpenAI app.

`build_app(args)` is the import path the RayService's serveConfigV2 names. Each replica starts the
engine, proves it can generate (so the endpoint is ready only when it can answer), then serves
vLLM's own FastAPI app as the replica's ASGI ingress: the OpenAI routes, chat templates, tool-call
parsers and error shapes are vLLM's, not ours. See serving/README.md for why this design.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

from ray import serve
from ray.serve import Application

from serving import compat
from serving.middleware import ApiKeyMiddleware, RayServeMetricsMiddleware
from serving.settings import DEPLOYMENT_NAME, ServingSettings

logger = logging.getLogger("ray.serve")

# Ray Serve replaces a replica whose check_health fails (e.g. its EngineCore process died).
HEALTH_CHECK_PERIOD_S = 5
HEALTH_CHECK_TIMEOUT_S = 30
# Let in-flight streams finish when a replica is drained (scale-down, rolling update).
GRACEFUL_SHUTDOWN_TIMEOUT_S = 60
ENGINE_WATCH_INTERVAL_S = 0.5
# Sent as Retry-After with the 503 that a full queue answers.
RETRY_AFTER_S = 1


@serve.ingress()
class VLLMServer:
    async def __init__(self, args: dict[str, Any]) -> None:
        self.settings = ServingSettings.from_args(args)
        options = self.settings.engine_options()
        self._args = compat.engine_namespace(options)
        self._engine_cm = compat.engine_client(self._args, options["device_env"])
        self._engine = await self._engine_cm.__aenter__()
        await self._generate_one_token()
        self._watchdog = asyncio.get_running_loop().create_task(self._exit_when_engine_dies())
        logger.info("vLLM %s engine ready for %s", compat.vllm_version(), self.settings.served_model_name)

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
        app = await compat.openai_app(self._engine, self._args)
        # vLLM's setup already built Starlette's middleware stack; drop it so it is rebuilt (with
        # these middlewares and Ray Serve's exception handlers) on the first ASGI call.
        app.middleware_stack = None
        app.add_middleware(RayServeMetricsMiddleware, metrics_url=_node_metrics_url)
        api_key = os.environ.get(self.settings.api_key_env, "")
        if api_key:
            app.add_middleware(ApiKeyMiddleware, api_key=api_key)
        return app

    async def check_health(self) -> None:
        # Raises once the engine is dead (EngineCore crashed or was killed): Ray Serve then stops
        # routing to this replica and starts a new one.
        await self._engine.check_health()

    async def __del__(self) -> None:
        engine_cm = getattr(self, "_engine_cm", None)
        if engine_cm is not None:
            await engine_cm.__aexit__(None, None, None)


def _node_metrics_url() -> str | None:
    try:
        import ray

        port = ray._private.worker.global_worker.node.metrics_export_port
    except Exception:  # noqa: BLE001 - metrics are best effort; never fail a scrape over them
        return None
    return f"http://127.0.0.1:{port}/metrics" if port else None


def deployment_options(settings: ServingSettings) -> dict[str, Any]:
    actor_options: dict[str, Any] = {"num_cpus": settings.num_cpus}
    if settings.device == "neuron":
        actor_options["resources"] = {"neuron_cores": settings.neuron_cores}
    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": actor_options,
        "max_ongoing_requests": settings.max_ongoing_requests,
        "max_queued_requests": settings.max_queued_requests,
        "backpressure_config": {"status_code": 503, "retry_after_s": RETRY_AFTER_S},
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "health_check_timeout_s": HEALTH_CHECK_TIMEOUT_S,
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_TIMEOUT_S,
    }
    if settings.min_replicas == settings.max_replicas:
        options["num_replicas"] = settings.min_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "initial_replicas": max(settings.min_replicas, 1),
            # A replica is busy when its engine batch is full.
            "target_ongoing_requests": settings.max_num_seqs,
        }
    return options


def build_app(args: dict[str, Any]) -> Application:
    """Entry point named by serveConfigV2 (`serving.app:build_app`)."""
    settings = ServingSettings.from_args(args)
    deployment = serve.deployment(VLLMServer).options(**deployment_options(settings))
    return deployment.bind(settings.to_args())

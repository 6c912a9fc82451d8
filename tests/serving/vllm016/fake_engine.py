"""FakeEngineClientForRouteTests: a test double for vLLM's engine client, for vLLM 0.16's OpenAI layer.

vLLM 0.16 (the Neuron DLC's) cannot run its engine on this machine (vllm._C is built for torch 2.10),
so the tests put this double behind `init_app_state`. Only the compiled part is faked: the EngineCore.
Everything on the API side of it is vLLM's own -- the real VllmConfig, InputProcessor (tokenization,
chat template, validation against max_model_len), OutputProcessor (detokenization, stop strings,
streaming deltas, usage) and the n > 1 fan-out -- wired the way vLLM 0.16's AsyncLLM wires them
(vllm/v1/engine/async_llm.py add_request/generate). The "model" answers each sequence by cycling
through its prompt's token ids, so outputs are deterministic and decode to real text.
"""

from __future__ import annotations

import asyncio
import time
from copy import copy
from typing import Any

from vllm.engine.protocol import EngineClient
from vllm.outputs import STREAM_FINISHED, RequestOutput
from vllm.v1.engine import EngineCoreOutput, EngineCoreRequest, FinishReason
from vllm.v1.engine.exceptions import EngineDeadError
from vllm.v1.engine.input_processor import InputProcessor
from vllm.v1.engine.output_processor import OutputProcessor, RequestOutputCollector
from vllm.v1.engine.parallel_sampling import ParentRequest

# The abstract methods of vLLM's EngineClient the OpenAI routes never reach with this config
# (LoRA, profiling, sleep mode, elastic EP, weight transfer, pooling): they answer NotImplementedError,
# which vLLM's app turns into its own 501.
_UNUSED = ("encode", "start_profile", "stop_profile", "reset_mm_cache", "reset_encoder_cache", "reset_prefix_cache",
           "sleep", "wake_up", "is_sleeping", "add_lora", "pause_generation", "resume_generation", "is_paused",
           "scale_elastic_ep", "collective_rpc", "init_weight_transfer_engine", "update_weights")


class FakeEngineClientForRouteTests(EngineClient):
    def __init__(self, vllm_config, supported_tasks: tuple[str, ...] = ("generate",)) -> None:
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.input_processor = InputProcessor(vllm_config)
        self.io_processor = None
        self.output_processor = OutputProcessor(self.input_processor.tokenizer, log_stats=False)
        self._supported_tasks = supported_tasks
        self._errored = False
        self.seen: list[dict[str, Any]] = []  # what reached the "engine": the tests assert on it

    # --- state ---------------------------------------------------------------------------------------
    @property
    def renderer(self):
        return self.input_processor.renderer

    @property
    def tokenizer(self):
        return self.input_processor.tokenizer

    def get_tokenizer(self):
        return self.input_processor.get_tokenizer()

    @property
    def is_running(self) -> bool:
        return not self._errored

    @property
    def is_stopped(self) -> bool:
        return self._errored

    @property
    def errored(self) -> bool:
        return self._errored

    @property
    def dead_error(self) -> BaseException:
        return EngineDeadError()  # what AsyncLLM raises once its EngineCore process is gone

    def die(self) -> None:
        """As if the EngineCore process had died (AsyncLLM sets errored and raises EngineDeadError)."""
        self._errored = True

    async def get_supported_tasks(self):
        return self._supported_tasks

    async def check_health(self) -> None:
        if self._errored:
            raise self.dead_error

    async def is_tracing_enabled(self) -> bool:
        return False

    async def do_log_stats(self) -> None:
        return None

    async def abort(self, request_id, internal: bool = False) -> None:
        ids = [request_id] if isinstance(request_id, str) else list(request_id)
        self.output_processor.abort_requests(ids, internal)

    # --- generation ------------------------------------------------------------------------------------
    async def generate(self, prompt, sampling_params, request_id, *, prompt_text=None, lora_request=None,
                       tokenization_kwargs=None, trace_headers=None, priority=0, data_parallel_rank=None):
        if self._errored:
            raise self.dead_error
        if isinstance(prompt, EngineCoreRequest):
            request = prompt
        else:
            request = self.input_processor.process_inputs(
                request_id, prompt, sampling_params, lora_request=lora_request,
                tokenization_kwargs=tokenization_kwargs, trace_headers=trace_headers, priority=priority,
                data_parallel_rank=data_parallel_rank, supported_tasks=self._supported_tasks)
        self.input_processor.assign_request_id(request)
        params = request.params
        self.seen.append({"prompt_token_ids": list(request.prompt_token_ids or []), "n": params.n,
                          "max_tokens": params.max_tokens})
        queue = RequestOutputCollector(params.output_kind, request.request_id)
        children = [(request, None, 0)]
        if params.n > 1:
            parent = ParentRequest(request)
            children = []
            for idx in range(params.n):
                child_id, child_params = parent.get_child_info(idx)
                child = request if idx == params.n - 1 else copy(request)
                child.request_id, child.sampling_params = child_id, child_params
                children.append((child, parent, idx))
        tasks = []
        for child, parent, idx in children:
            self.output_processor.add_request(child, prompt_text, parent, idx, queue)
            tasks.append(asyncio.get_running_loop().create_task(self._run(child)))
        try:
            finished = False
            while not finished:
                out = queue.get_nowait() or await queue.get()
                assert isinstance(out, RequestOutput)
                finished = out.finished
                if out is not STREAM_FINISHED:
                    yield out
        except (asyncio.CancelledError, GeneratorExit):
            self.output_processor.abort_requests([c.request_id for c, _, _ in children], internal=True)
            raise
        finally:
            for task in tasks:
                task.cancel()
            queue.close()

    async def _run(self, request: EngineCoreRequest) -> None:
        """The fake EngineCore: one token per step, the prompt's ids in a cycle, until max_tokens."""
        prompt = list(request.prompt_token_ids or [0])
        limit = min(request.sampling_params.max_tokens or 16, self.model_config.max_model_len - len(prompt))
        for step in range(max(limit, 1)):
            last = step == limit - 1
            out = EngineCoreOutput(request_id=request.request_id, new_token_ids=[prompt[step % len(prompt)]],
                                   finish_reason=FinishReason.LENGTH if last else None)
            processed = self.output_processor.process_outputs([out], engine_core_timestamp=time.monotonic())
            if last or request.request_id in processed.reqs_to_abort:
                return
            await asyncio.sleep(0)


for _name in _UNUSED:
    async def _not_implemented(self, *args, _name=_name, **kwargs):
        raise NotImplementedError(f"FakeEngineClientForRouteTests does not implement {_name}")
    setattr(FakeEngineClientForRouteTests, _name, _not_implemented)
FakeEngineClientForRouteTests.__abstractmethods__ = frozenset()

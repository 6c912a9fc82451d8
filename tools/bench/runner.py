"""Sends the workload: N concurrent users, each sending its requests one after another (closed loop,
as LLMPerf does), streaming through the openai SDK's async client and timing every chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import openai

from tools.bench.workload import PreparedRequest, TokenCounter, filler_text

# LLMPerf's per-request record keys (common_metrics.py), so its notebooks read our files.
INTER_TOKEN_LAT = "inter_token_latency_s"
TTFT = "ttft_s"
E2E_LAT = "end_to_end_latency_s"
REQ_OUTPUT_THROUGHPUT = "request_output_throughput_token_per_s"
NUM_INPUT_TOKENS = "number_input_tokens"
NUM_OUTPUT_TOKENS = "number_output_tokens"
NUM_TOTAL_TOKENS = "number_total_tokens"
ERROR_CODE = "error_code"
ERROR_MSG = "error_msg"


@dataclass
class LevelRun:
    concurrency: int
    records: list[dict]
    start: float
    end: float
    timed_out: bool
    unfinished: int  # requests never sent or cut off by the timeout

    @property
    def duration_s(self) -> float:
        return self.end - self.start


async def _one_request(client: openai.AsyncOpenAI, model: str, request: PreparedRequest, counter: TokenCounter,
                       sampling: dict, extra_body: dict, launched_at: float) -> dict:
    record: dict = {ERROR_CODE: None, ERROR_MSG: ""}
    start = time.monotonic()
    first = last = None
    text: list[str] = []
    usage = None
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": request.prompt}],
            max_tokens=request.max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra_body or None,
            **sampling,
        )
        async for chunk in stream:
            # Buffered chunks are read without suspending: yield, so the level's deadline (and its
            # cancel) can run while a fast stream is being consumed.
            await asyncio.sleep(0)
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                last = time.monotonic()
                first = first or last
                text.append(chunk.choices[0].delta.content)
    except openai.APIStatusError as exc:
        return {**record, ERROR_CODE: exc.status_code, ERROR_MSG: " ".join(str(exc.message).split())[:500]}
    except openai.APIError as exc:  # connection reset, timeout: no HTTP status
        return {**record, ERROR_CODE: -1, ERROR_MSG: f"{type(exc).__name__}: {exc}"[:500]}
    end = time.monotonic()
    if first is None:
        return {**record, ERROR_CODE: -1, ERROR_MSG: "the stream ended without any content"}

    generated = "".join(text)
    if counter.available:
        output_tokens = counter.count(generated)
        input_tokens = request.prompt_tokens
    else:
        output_tokens = usage.completion_tokens if usage else None
        input_tokens = usage.prompt_tokens if usage else None
    if not output_tokens or input_tokens is None:
        return {**record, ERROR_CODE: -1,
                ERROR_MSG: "no token counts: the endpoint sent no usage figures and no local tokenizer was "
                           "found; pass --tokenizer PATH_TO_MODEL_DIR"}
    e2e = end - start
    ttft = first - start
    # Inter-token latency = decode time per token after the first (vLLM's TPOT). LLMPerf divides the
    # whole request time, TTFT included, by the token count; that mixes prefill into the decode figure.
    itl = (last - first) / (output_tokens - 1) if output_tokens > 1 else 0.0
    return {
        **record,
        INTER_TOKEN_LAT: itl,
        TTFT: ttft,
        E2E_LAT: e2e,
        REQ_OUTPUT_THROUGHPUT: output_tokens / e2e,
        NUM_OUTPUT_TOKENS: output_tokens,
        NUM_TOTAL_TOKENS: input_tokens + output_tokens,
        NUM_INPUT_TOKENS: input_tokens,
        "max_tokens": request.max_tokens,
        "usage_prompt_tokens": usage.prompt_tokens if usage else None,
        "usage_completion_tokens": usage.completion_tokens if usage else None,
        "request_start_time_s": start - launched_at,
    }


# Seconds a level waits for its cancelled requests to unwind after its timeout.
CANCEL_GRACE_S = 2.0


async def run_level(client: openai.AsyncOpenAI, model: str, requests: list[PreparedRequest], concurrency: int,
                    counter: TokenCounter, *, timeout_s: float, sampling: dict | None = None,
                    extra_body: dict | None = None, on_done: Callable[[dict], None] = lambda r: None) -> LevelRun:
    """Runs `requests` with `concurrency` users; stops at `timeout_s` and keeps what completed."""
    queue = deque(requests)
    records: list[dict] = []
    start = time.monotonic()

    async def user() -> None:
        while queue:
            record = await _one_request(client, model, queue.popleft(), counter, sampling or {}, extra_body or {},
                                        start)
            records.append(record)
            on_done(record)

    tasks = [asyncio.create_task(user()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    queue.clear()  # no user starts another request after the deadline
    for task in pending:
        task.cancel()
    # A cancelled stream may take a while to unwind (the SDK closes its HTTP response); the level's
    # deadline holds anyway: wait a short grace, then leave the stragglers to the event loop's end.
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_GRACE_S)
    end = time.monotonic()
    return LevelRun(concurrency, records, start, end, timed_out=bool(pending),
                    unfinished=len(requests) - len(records))


async def calibrate_words_per_token(client: openai.AsyncOpenAI, model: str) -> float:
    """Without a local tokenizer: words per prompt token, from the endpoint's usage of two prompts.

    The difference of two prompt sizes cancels the chat template's fixed token overhead.
    """
    counts = []
    for words in (50, 400):
        response = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": filler_text(words)}], max_tokens=1)
        if response.usage is None:
            raise RuntimeError("the endpoint reports no usage figures; pass --tokenizer PATH_TO_MODEL_DIR")
        counts.append(response.usage.prompt_tokens)
    tokens = counts[1] - counts[0]
    return 350 / tokens if tokens > 0 else 0.75

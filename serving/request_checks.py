"""What one generation request may ask of the engine (config/request_limits.py), checked before vLLM.

`check_generation(path, request, limits, ...)` returns a Refusal (a 400 naming the parameter and the
limit) or the request to pass on. Types are not checked here: a `max_tokens` that is not an integer
goes on to vLLM, which answers its own 400 on both 0.16 and 0.32.

Output length, in two layers. The ceiling (max_max_tokens) is also the engine's generation-config
default (serving/settings.py: override_generation_config max_new_tokens), which vLLM applies as
min(remaining context, ceiling, requested) on every route (vllm/entrypoints/utils.py get_max_tokens,
0.16 and 0.32); here a request asking for more gets a 400 instead of a silent clamp. The lower
default_max_tokens is filled in only when the prompt provably leaves room for it: vLLM 0.16 refuses
an explicit max_tokens that does not fit the context (openai/engine/serving.py _validate_input), so
injecting it into a long prompt would turn a working request into a 400. A prompt has at most as
many tokens as its body has bytes (token ids are written as >= 2 bytes each), plus the chat template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.request_limits import RequestLimits

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
GENERATION_PATHS = (COMPLETIONS, CHAT)
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")


@dataclass(frozen=True)
class Refusal:
    message: str
    param: str | None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count_prompts(prompt: Any) -> int:
    """Prompts in a completions `prompt`: a string or a token list is one; a list of those is many."""
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        return len(prompt)
    return 1


def _over(name: str, value: int, limit: int, what: str) -> Refusal:
    return Refusal(f"{name}={value} is above this server's limit of {limit} ({what}); send {name} <= {limit}.", name)


# Upper bound of the tokens a chat template adds: per message (role headers) and once (BOS, the
# generation prompt). Llama 3's template adds 4-5 per message and 1-5 once.
TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS_ONCE = 64


def check_generation(path: str, request: Any, limits: RequestLimits, *, body_bytes: int,
                     max_model_len: int) -> Refusal | dict:
    if not isinstance(request, dict):
        # vLLM 0.16's chat validator crashes on a JSON array body (AttributeError, a 500); 0.32 says 400.
        return Refusal(f"The request body must be a JSON object, got a JSON {type(request).__name__}.", None)
    prompts = 1
    if path == COMPLETIONS:
        prompts = _count_prompts(request.get("prompt"))
        if prompts > limits.max_prompts:
            return _over("prompt", prompts, limits.max_prompts, "prompts per request")
    if path == CHAT:
        messages = request.get("messages")
        if isinstance(messages, list) and len(messages) > limits.max_messages:
            return _over("messages", len(messages), limits.max_messages, "messages per request")
    for name in ("n", "best_of"):
        fan_out = _int(request.get(name))
        if fan_out is not None and fan_out * prompts > limits.max_sequences:
            if prompts == 1:
                return _over(name, fan_out, limits.max_sequences, "sequences per request: the engine's batch")
            return Refusal(f"{prompts} prompts x {name}={fan_out} is {fan_out * prompts} sequences, above this "
                           f"server's limit of {limits.max_sequences} per request (the engine's batch); "
                           "send fewer prompts or a smaller n.", name)
    given = [f for f in MAX_TOKENS_FIELDS if request.get(f) is not None]
    for name in given + ["min_tokens"]:
        value = _int(request.get(name))
        if value is not None and value > limits.max_max_tokens:
            return _over(name, value, limits.max_max_tokens, "tokens per completion")
    for name in ("stop", "stop_token_ids"):
        value = request.get(name)
        count = 1 if isinstance(value, str) else len(value) if isinstance(value, list) else 0
        if count > limits.max_stop:
            return _over(name, count, limits.max_stop, "stop entries")
    bias = request.get("logit_bias")
    if isinstance(bias, dict) and len(bias) > limits.max_logit_bias:
        return _over("logit_bias", len(bias), limits.max_logit_bias, "logit_bias entries")
    # Chat: top_logprobs (logprobs is a bool); completions: logprobs is the count. Both: prompt_logprobs.
    for name in ("top_logprobs", "prompt_logprobs") + (("logprobs",) if path == COMPLETIONS else ()):
        value = _int(request.get(name))
        if value is not None and value > limits.max_top_logprobs:
            return _over(name, value, limits.max_top_logprobs, "log-probabilities per token")
    if not given:
        messages = request.get("messages")
        count = len(messages) if isinstance(messages, list) else 0
        prompt_bound = body_bytes + TEMPLATE_TOKENS_PER_MESSAGE * count + TEMPLATE_TOKENS_ONCE
        if prompt_bound + limits.default_max_tokens <= max_model_len:
            return {**request, "max_tokens": limits.default_max_tokens}
    return request

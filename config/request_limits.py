"""Per-request limits of the serving endpoint: what one request may ask of a replica.

Ray Serve's queue limits count HTTP requests, not engine work: one `/v1/completions` call with 512
prompts, `n=64` or `max_tokens=100000` would hold a replica's whole batch for minutes. These limits
are checked in front of vLLM (serving/limits.py), the same on vLLM 0.16 (the Neuron DLC, which has no
VLLM_MAX_N_SEQUENCES) and 0.32. The defaults derive from the engine's shape (max_num_seqs,
max_model_len); an environment may override any of them (EnvironmentConfig.request_limits).

Pure standard library: the serving image carries this one file of config/ (serving/Dockerfile), so
the replica and the charts read the same definition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping


class RequestLimitsError(ValueError):
    """A limit is wrong; the message names it and what is allowed."""


@dataclass(frozen=True)
class RequestLimits:
    # Bytes of one request body; above it: 413.
    max_body_bytes: int
    # Sequences one request may start: prompts x n (x best_of). At most the engine's batch, so one
    # request can never take more than every slot of one replica.
    max_sequences: int
    # Prompts in one /v1/completions request (a list of strings or of token lists).
    max_prompts: int
    # max_tokens (or max_completion_tokens) when the request gives none, and the most it may give.
    default_max_tokens: int
    max_max_tokens: int
    # Entries of `stop` (and `stop_token_ids`), of `logit_bias`, of `messages`, and `top_logprobs`
    # (chat) or `logprobs` (completions).
    max_stop: int
    max_logit_bias: int
    max_messages: int
    max_top_logprobs: int
    # Seconds a request's body may take to arrive; after it: 408. Ray Serve counts a request against
    # max_ongoing_requests from its headers on, so a client that never finishes its body would
    # hold a replica's slot for as long as it likes (HAProxy, in front, has no body timeout set).
    body_timeout_s: int

    def validate(self) -> "RequestLimits":
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RequestLimitsError(f"request_limits.{f.name}: must be a positive integer, got {value!r}")
        if self.default_max_tokens > self.max_max_tokens:
            raise RequestLimitsError(
                f"request_limits.default_max_tokens: {self.default_max_tokens} is above max_max_tokens="
                f"{self.max_max_tokens}; the default must be allowed by the ceiling")
        if self.max_prompts > self.max_sequences:
            raise RequestLimitsError(
                f"request_limits.max_prompts: {self.max_prompts} is above max_sequences={self.max_sequences}; "
                "each prompt is at least one sequence")
        return self

    def to_args(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_args(cls, args: Mapping[str, Any], field_name: str = "request_limits") -> "RequestLimits":
        if not isinstance(args, Mapping):
            raise RequestLimitsError(f"{field_name}: expected a mapping of limits, got {type(args).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise RequestLimitsError(f"{field_name}: unknown limit(s) {unknown}; allowed: {names}")
        missing = [n for n in names if n not in args]
        if missing:
            raise RequestLimitsError(f"{field_name}: missing limit(s) {missing}")
        return cls(**{n: args[n] for n in names}).validate()


# OpenAI's own bounds where it has them (top_logprobs <= 20, up to 4 stop sequences, logit_bias
# entries); vLLM's default max_logprobs is 20 and vLLM 0.32 caps `stop` at 4 itself (0.16 does not).
TOP_LOGPROBS_CEILING = 20
LOGIT_BIAS_CEILING = 300
STOP_CEILING = 4
MESSAGES_CEILING = 1024
MIN_BODY_BYTES = 1 << 20
# 1 MiB in 30 s is 35 KB/s: far below any in-VPC client. Not 10 s: the clock runs on the replica's
# own event loop, which under a flood hands over a body that has long arrived late (2 of 130 flood
# requests got 408 at 10 s on a 2-core CI machine, tests/serving/test_load.py).
BODY_TIMEOUT_S = 30
BODY_BYTES_PER_TOKEN = 128  # generous: a token is ~4 bytes of text, JSON and tool schemas add more


def derive_request_limits(max_num_seqs: int, max_model_len: int,
                          overrides: Mapping[str, Any] | None = None) -> RequestLimits:
    """The limits for an engine of this shape, then `overrides` (names as RequestLimits' fields)."""
    limits = RequestLimits(
        max_body_bytes=max(MIN_BODY_BYTES, max_model_len * BODY_BYTES_PER_TOKEN),
        max_sequences=max_num_seqs,
        max_prompts=max_num_seqs,
        # Half the context by default and as the ceiling: a prompt keeps room, and one sequence
        # holds its slot for at most max_model_len / 2 decode steps.
        default_max_tokens=max(1, min(1024, max_model_len // 4)),
        max_max_tokens=max(1, max_model_len // 2),
        max_stop=STOP_CEILING,
        max_logit_bias=LOGIT_BIAS_CEILING,
        max_messages=MESSAGES_CEILING,
        max_top_logprobs=TOP_LOGPROBS_CEILING,
        body_timeout_s=BODY_TIMEOUT_S,
    )
    overrides = dict(overrides or {})
    allowed = [f.name for f in fields(RequestLimits)]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise RequestLimitsError(f"request_limits: unknown limit(s) {unknown}; allowed: {allowed}")
    if overrides.get("max_max_tokens", 0) and overrides["max_max_tokens"] > max_model_len:
        raise RequestLimitsError(
            f"request_limits.max_max_tokens: {overrides['max_max_tokens']} is above the engine's max_model_len="
            f"{max_model_len}; no request could use it")
    if overrides.get("max_sequences", 0) and overrides["max_sequences"] > max_num_seqs:
        raise RequestLimitsError(
            f"request_limits.max_sequences: {overrides['max_sequences']} is above the engine's max_num_seqs="
            f"{max_num_seqs}; one request would hold more than a replica's whole batch")
    # A lowered ceiling carries the default derived from it along, unless that is given too.
    if "max_max_tokens" in overrides and "default_max_tokens" not in overrides:
        overrides["default_max_tokens"] = min(limits.default_max_tokens, overrides["max_max_tokens"])
    if "max_sequences" in overrides and "max_prompts" not in overrides:
        overrides["max_prompts"] = min(limits.max_prompts, overrides["max_sequences"])
    return replace(limits, **overrides).validate()

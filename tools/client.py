"""Example OpenAI client for the Llama-3 endpoint (the blueprint's openai-client.py, done properly).

Three flows: a simple chat completion, one with different sampling parameters, and a streaming one
printed as it arrives. Works against local mode and a deployed endpoint alike:

    python -m tools.client                                  # local mode on 127.0.0.1:8000
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=... python -m tools.client --example stream

Failures (endpoint down, wrong key, model not served) print one line saying what to do, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, TextIO

import openai

from tools.endpoint import (
    Endpoint, EndpointError, add_endpoint_arguments, endpoint_from_args, report_failure, resolve_model,
)

EXAMPLES = ("simple", "params", "stream")


def simple_chat(client: openai.OpenAI, model: str, *, max_tokens: int = 100) -> str:
    """Example 1: one question, one answer. Greedy (temperature 0): a factual question has one right
    answer, and sampling only adds the chance of a wrong one (most visible on a small model)."""
    response = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of India?"},
        ],
        temperature=0,
        max_tokens=max_tokens,
    )
    return response.choices[0].message.content or ""


def chat_with_parameters(client: openai.OpenAI, model: str, *, temperature: float = 0.9, top_p: float = 0.95,
                         max_tokens: int = 200) -> tuple[str, openai.types.CompletionUsage | None]:
    """Example 2: creative sampling (temperature, top_p) and a longer output budget."""
    response = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a creative writing assistant."},
            {"role": "user", "content": "Write a short story about the Star Wars franchise."},
        ],
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
    )
    return response.choices[0].message.content or "", response.usage


def stream_chat(client: openai.OpenAI, model: str, *, max_tokens: int = 100) -> Iterable[str]:
    """Example 3: yields the answer's text pieces as the server sends them (greedy, like example 1)."""
    stream = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Count from 1 to 10, with a brief pause between each number."},
        ],
        temperature=0,
        max_tokens=max_tokens,
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


def run(endpoint: Endpoint, examples: Iterable[str], *, max_tokens: int | None, out: TextIO) -> None:
    model, _ = resolve_model(endpoint)
    client = endpoint.client()
    budget = {} if max_tokens is None else {"max_tokens": max_tokens}
    for name in examples:
        if name == "simple":
            print(f"Example 1 - simple chat completion ({model}):", file=out)
            print(simple_chat(client, model, **budget), file=out)
        elif name == "params":
            print(f"Example 2 - chat completion with temperature=0.9, top_p=0.95, "
                  f"max_tokens={budget.get('max_tokens', 200)}:", file=out)
            text, usage = chat_with_parameters(client, model, **budget)
            print(text, file=out)
            if usage:
                print(f"[usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens]",
                      file=out)
        elif name == "stream":
            print("Example 3 - streaming chat completion:", file=out)
            for piece in stream_chat(client, model, **budget):
                print(piece, end="", file=out, flush=True)
            print(file=out)
        print(file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.client", description=__doc__.split("\n\n")[0])
    add_endpoint_arguments(parser)
    parser.add_argument("--example", choices=("all", *EXAMPLES), default="all", help="which flow to run")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="override every example's output budget (e.g. 16 for a quick check)")
    args = parser.parse_args(argv)
    if args.max_tokens is not None and args.max_tokens < 1:
        parser.error("--max-tokens: must be a positive integer")
    endpoint = None
    try:
        endpoint = endpoint_from_args(args)
        run(endpoint, EXAMPLES if args.example == "all" else (args.example,), max_tokens=args.max_tokens,
            out=sys.stdout)
    except (EndpointError, openai.APIError) as exc:
        return report_failure(exc, endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start every tool-call parser of config/models.py on real tokenizers, in this venv's vLLM.

    <venv>/bin/python -m tests.serving.tool_parser_probe NAME=MODEL_DIR ...   (prints one JSON line)

Run by tests/serving/test_tool_parsers.py with vLLM 0.32 (local mode) and vLLM 0.16 (the Neuron
DLC's). For each parser and tokenizer: whether the parser starts (the check vLLM runs when the
server starts, serving.py building its OpenAIServingChat), and, where it starts, what it makes of a
plain answer and of a call in its own format.
"""

from __future__ import annotations

import json
import sys

from config.models import TOOL_CALL_PARSERS

# A call in each parser's own format, for the parsers that start.
CALLS = {"pythonic": "[get_weather(city='Paris')]", "llama3_json": '{"name": "get_weather", "parameters": {"city": "Paris"}}'}
PLAIN = "The capital of India is New Delhi."
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def _request():
    try:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    except ImportError:  # vLLM 0.16
        from vllm.entrypoints.openai.protocol import ChatCompletionRequest
    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=[TOOL],
                                 tool_choice="auto")


def main() -> None:
    import vllm
    from transformers import AutoTokenizer
    from vllm.tool_parsers import ToolParserManager

    out = {"vllm": vllm.__version__, "results": {}}
    request = _request()
    for item in sys.argv[1:]:
        name, _, model_dir = item.partition("=")
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        except ValueError:
            # transformers 4 (vLLM 0.16's) cannot name transformers 5's tokenizer class; the
            # vocabulary, all a parser reads, is the same tokenizer.json.
            from transformers import PreTrainedTokenizerFast

            tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
        for parser_name in TOOL_CALL_PARSERS:
            result: dict = {}
            try:
                parser = ToolParserManager.get_tool_parser(parser_name)(tokenizer)
            except Exception as exc:  # noqa: BLE001 - the start failure is the result
                result["error"] = f"{type(exc).__name__}: {exc}"
            else:
                plain = parser.extract_tool_calls(PLAIN, request)
                call = parser.extract_tool_calls(CALLS[parser_name], request)
                result.update(plain_content=plain.content, plain_called=plain.tools_called,
                              call_names=[c.function.name for c in call.tool_calls])
            out["results"][f"{name}/{parser_name}"] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()

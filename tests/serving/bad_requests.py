"""Bad requests the server must answer with an OpenAI-style 4xx, and keep serving afterwards.

Each case: (id, method, path, body, expected status). `body` is a dict/list (sent as JSON) or bytes
(sent raw, for malformed JSON). MODEL is replaced by the served model name.
"""

MODEL = "<served-model>"
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
USER = [{"role": "user", "content": "Hello"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

CASES = [
    ("malformed-json", "POST", CHAT, b'{"model": "x", "messages": [', 400),
    ("json-array-body", "POST", CHAT, [1, 2, 3], 400),
    ("empty-body", "POST", CHAT, b"", 400),
    ("missing-messages", "POST", CHAT, {"model": MODEL}, 400),
    ("messages-not-a-list", "POST", CHAT, {"model": MODEL, "messages": "Hello"}, 400),
    ("empty-messages", "POST", CHAT, {"model": MODEL, "messages": []}, 400),
    ("message-without-role", "POST", CHAT, {"model": MODEL, "messages": [{"content": "Hi"}]}, 400),
    ("unknown-role", "POST", CHAT, {"model": MODEL, "messages": [{"role": "wizard", "content": "Hi"}]}, 400),
    ("content-wrong-type", "POST", CHAT, {"model": MODEL, "messages": [{"role": "user", "content": 42}]}, 400),
    ("unknown-model", "POST", CHAT, {"model": "no-such-model", "messages": USER}, 404),
    ("model-wrong-type", "POST", CHAT, {"model": 7, "messages": USER}, 400),
    ("max-tokens-zero", "POST", CHAT, {"model": MODEL, "messages": USER, "max_tokens": 0}, 400),
    ("max-tokens-negative", "POST", CHAT, {"model": MODEL, "messages": USER, "max_tokens": -5}, 400),
    ("max-tokens-beyond-context", "POST", CHAT, {"model": MODEL, "messages": USER, "max_tokens": 100000}, 400),
    ("max-tokens-string", "POST", CHAT, {"model": MODEL, "messages": USER, "max_tokens": "many"}, 400),
    ("chat-prompt-too-long", "POST", CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "Paris weather " * 1500}]}, 400),
    ("completion-prompt-too-long", "POST", COMPLETIONS, {"model": MODEL, "prompt": "Paris weather " * 1500, "max_tokens": 4}, 400),
    ("temperature-negative", "POST", CHAT, {"model": MODEL, "messages": USER, "temperature": -1}, 400),
    ("top-p-zero", "POST", CHAT, {"model": MODEL, "messages": USER, "top_p": 0}, 400),
    ("top-p-above-one", "POST", CHAT, {"model": MODEL, "messages": USER, "top_p": 1.5}, 400),
    ("n-zero", "POST", CHAT, {"model": MODEL, "messages": USER, "n": 0}, 400),
    ("n-too-large", "POST", CHAT, {"model": MODEL, "messages": USER, "n": 100000, "max_tokens": 4}, 400),
    ("n-above-batch-size", "POST", CHAT, {"model": MODEL, "messages": USER, "n": 17, "max_tokens": 4}, 400),
    ("stream-not-bool", "POST", CHAT, {"model": MODEL, "messages": USER, "stream": "yes please"}, 400),
    ("stream-options-without-stream", "POST", CHAT, {"model": MODEL, "messages": USER, "stream_options": {"include_usage": True}}, 400),
    ("stop-wrong-type", "POST", CHAT, {"model": MODEL, "messages": USER, "stop": 12}, 400),
    ("top-logprobs-too-many", "POST", CHAT, {"model": MODEL, "messages": USER, "logprobs": True, "top_logprobs": 1000}, 400),
    ("presence-penalty-out-of-range", "POST", CHAT, {"model": MODEL, "messages": USER, "presence_penalty": 5}, 400),
    ("tool-missing-function", "POST", CHAT, {"model": MODEL, "messages": USER, "tools": [{"type": "function"}]}, 400),
    ("tool-choice-unknown-function", "POST", CHAT, {"model": MODEL, "messages": USER, "tools": [WEATHER_TOOL],
                                                    "tool_choice": {"type": "function", "function": {"name": "launch_rocket"}}}, 400),
    ("response-format-unknown", "POST", CHAT, {"model": MODEL, "messages": USER, "response_format": {"type": "yaml"}}, 400),
    ("completion-missing-prompt", "POST", COMPLETIONS, {"model": MODEL, "max_tokens": 4}, 400),
    ("completion-prompt-wrong-type", "POST", COMPLETIONS, {"model": MODEL, "prompt": {"text": "hi"}, "max_tokens": 4}, 400),
    ("completion-max-tokens-zero", "POST", COMPLETIONS, {"model": MODEL, "prompt": "hi", "max_tokens": 0}, 400),
    ("unknown-route", "POST", "/v1/does-not-exist", {"model": MODEL}, 404),
    ("wrong-method", "GET", CHAT, None, 405),
]

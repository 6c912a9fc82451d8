"""Reference greedy outputs from Hugging Face transformers (run with the serving venv's Python).

    .venv-serving/bin/python -m tests.serving.hf_reference [--model tiny-llama3|smollm2-135m-instruct] < requests.json

Input: a list of {"messages": [...]} or {"prompt": "..."} with "max_tokens" (and "stop_at_eos"). Output: for each, the
prompt token count, the greedy completion's token count and its text. An independent
implementation of the same model: if vLLM (served through Ray Serve) matches it token for token,
the chat template, tokenization, sampling and detokenization along the serving path are right.
"""

import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from serving.local.serve import LOCAL_MODELS, local_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(LOCAL_MODELS), default="tiny-llama3")
    _, model_dir = local_model(parser.parse_args().model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    results = []
    for req in json.load(sys.stdin):
        if "messages" in req:
            ids = tokenizer.apply_chat_template(req["messages"], tools=req.get("tools"), add_generation_prompt=True,
                                                tokenize=True, return_dict=True)["input_ids"]
        else:
            ids = tokenizer(req["prompt"])["input_ids"]
        with torch.no_grad():
            # "stop_at_eos": the model ends its answer as it was trained to (a real model); otherwise
            # exactly max_tokens, as vLLM's ignore_eos (the tiny model never ends by itself).
            length = {} if req.get("stop_at_eos") else {"min_new_tokens": req["max_tokens"]}
            out = model.generate(torch.tensor([ids]), max_new_tokens=req["max_tokens"], do_sample=False, **length)
        new = out[0][len(ids):].tolist()
        results.append({"prompt_tokens": len(ids), "completion_tokens": len(new),
                        "text": tokenizer.decode(new, skip_special_tokens=True)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

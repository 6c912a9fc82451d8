"""Prompt and output-length sampling, and where the token counts come from."""

import random
import statistics

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from tools.bench.workload import TokenCounter, Workload, prepare_requests


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A real byte-level BPE tokenizer.json, trained here (no model hub)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(["the river ran past the old mill where children played"] * 50, trainer=trainer)
    out = tmp_path_factory.mktemp("tok")
    tok.save(str(out / "tokenizer.json"))
    return out


def test_prompts_follow_the_requested_token_distribution(tokenizer_dir):
    counter = TokenCounter.find(str(tokenizer_dir), "any", None)
    workload = Workload()  # the blueprint's: 512 +- 20 in, 245 +- 20 out
    requests = prepare_requests(workload, 64, counter)
    prompt_tokens = [req.prompt_tokens for req in requests]
    assert all(req.prompt_tokens == counter.count(req.prompt) for req in requests)
    assert statistics.mean(prompt_tokens) == pytest.approx(512, abs=10)
    assert 8 <= statistics.stdev(prompt_tokens) <= 35
    outputs = [req.max_tokens for req in requests]
    assert statistics.mean(outputs) == pytest.approx(245, abs=10)
    assert 8 <= statistics.stdev(outputs) <= 35
    assert len({req.prompt for req in requests}) == len(requests)  # no two prompts alike (no prefix-cache flattery)


def test_same_seed_same_prompts(tokenizer_dir):
    counter = TokenCounter.find(str(tokenizer_dir / "tokenizer.json"), "any", None)
    a = prepare_requests(Workload(), 5, counter, rng=random.Random(7))
    b = prepare_requests(Workload(), 5, counter, rng=random.Random(7))
    assert a == b


def test_usage_mode_sizes_prompts_in_words():
    counter = TokenCounter.usage_only()
    requests = prepare_requests(Workload(mean_input_tokens=400, stddev_input_tokens=0), 3, counter,
                                words_per_token=0.5)
    for req in requests:
        assert req.prompt_tokens is None
        assert len(req.prompt.split()) == pytest.approx(200, abs=2)


def test_tokenizer_found_in_model_dir_then_hf_cache(tokenizer_dir, tmp_path, monkeypatch):
    assert TokenCounter.find(None, "tiny", str(tokenizer_dir)).source == f"tokenizer:{tokenizer_dir}/tokenizer.json"
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer.json").write_bytes((tokenizer_dir / "tokenizer.json").read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert TokenCounter.find(None, "org/name", "org/name").source == f"tokenizer:{snapshot}/tokenizer.json"
    assert TokenCounter.find(None, "org/other", None).source == "usage"


def test_bad_tokenizer_path_names_the_flag(tmp_path):
    with pytest.raises(ValueError, match="--tokenizer: no tokenizer.json"):
        TokenCounter.find(str(tmp_path), "m", None)


@pytest.mark.parametrize("kwargs, flag", [
    ({"mean_input_tokens": 0}, "--mean-input-tokens"),
    ({"stddev_output_tokens": -1}, "--stddev-output-tokens"),
    ({"concurrency": ()}, "--concurrency"),
    ({"timeout_s": 0}, "--timeout"),
])
def test_workload_validation_names_the_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        Workload(**kwargs)

"""The LLMPerf workload: how many requests, how long their prompts and answers are, and how tokens
are counted.

Defaults reproduce the blueprint's LLMPerf run: mean input 512 tokens (stddev 20), mean output 245
tokens (stddev 20), 8 requests per concurrent user, concurrency 1, 2, 4, 8, 16, 600 s per run.
"""

from __future__ import annotations

import glob
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import Tokenizer

DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Workload:
    mean_input_tokens: int = 512
    stddev_input_tokens: int = 20
    mean_output_tokens: int = 245
    stddev_output_tokens: int = 20
    requests_per_user: int = 8
    concurrency: tuple[int, ...] = DEFAULT_CONCURRENCY
    timeout_s: float = 600.0  # per concurrency level, like LLMPerf's --timeout
    seed: int = 11111
    # Extra request fields (LLMPerf's --additional-sampling-params), e.g. {"temperature": 0}.
    sampling_params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("mean_input_tokens", "mean_output_tokens", "requests_per_user"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}: must be a positive integer")
        for name in ("stddev_input_tokens", "stddev_output_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')}: must be zero or positive")
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise ValueError("--concurrency: give positive integers, e.g. 1,2,4,8,16")
        if self.timeout_s <= 0:
            raise ValueError("--timeout: must be a positive number of seconds")

    def total_requests(self, concurrency: int) -> int:
        return self.requests_per_user * concurrency


@dataclass(frozen=True)
class PreparedRequest:
    prompt: str
    max_tokens: int
    prompt_tokens: int | None  # counted by the local tokenizer; None in usage mode


class TokenCounter:
    """Counts tokens with the served model's tokenizer when one is on this machine.

    `None` means no tokenizer: the benchmark then takes the endpoint's usage figures instead.
    """

    def __init__(self, tokenizer: Tokenizer | None, source: str):
        self._tokenizer = tokenizer
        self.source = source  # "tokenizer:<path>" or "usage"

    @property
    def available(self) -> bool:
        return self._tokenizer is not None

    def count(self, text: str) -> int:
        assert self._tokenizer is not None
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def truncate(self, text: str, tokens: int) -> str:
        """The longest prefix of `text` that is at most `tokens` tokens."""
        assert self._tokenizer is not None
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        if len(encoding.ids) <= tokens:
            return text
        return text[: encoding.offsets[tokens - 1][1]] if tokens > 0 else ""

    @classmethod
    def usage_only(cls) -> "TokenCounter":
        return cls(None, "usage")

    @classmethod
    def find(cls, explicit: str | None, model: str, model_root: str | None) -> "TokenCounter":
        """--tokenizer PATH, else the model's local directory, else the Hugging Face cache (offline)."""
        if explicit:
            path = _tokenizer_file(Path(explicit))
            if path is None:
                raise ValueError(f"--tokenizer: no tokenizer.json at {explicit}; give the model directory "
                                 f"or the tokenizer.json file, or omit it to use the endpoint's usage figures")
            return cls(Tokenizer.from_file(str(path)), f"tokenizer:{path}")
        for candidate in _candidates(model, model_root):
            path = _tokenizer_file(candidate)
            if path is not None:
                return cls(Tokenizer.from_file(str(path)), f"tokenizer:{path}")
        return cls.usage_only()


def _tokenizer_file(path: Path) -> Path | None:
    if path.is_file() and path.name.endswith(".json"):
        return path
    if (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    return None


def _candidates(model: str, model_root: str | None):
    # vLLM reports the weights' local directory as the model's `root` (local mode runs from one).
    for name in (model_root, model):
        if name and Path(name).is_dir():
            yield Path(name)
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub")
    for name in (model_root, model):
        if name and "/" in name and not name.startswith("/"):
            pattern = os.path.join(hub, "models--" + name.replace("/", "--"), "snapshots", "*")
            yield from (Path(p) for p in sorted(glob.glob(pattern)))


# --- prompts -----------------------------------------------------------------------------------
# Plain English filler for the prompts. What it says does not matter for speed; sampling words at
# random keeps prompts different from one another, so prefix caching cannot flatter the results.
_WORDS = (
    "the river ran past the old mill where children played under a wide grey sky and the wind "
    "carried songs from the harbour towns across green fields toward distant mountains covered in "
    "snow while merchants counted coins and sailors mended nets beside lanterns that burned late "
    "into a quiet night full of stars each morning bakers opened their doors to the smell of bread "
    "and travellers asked for directions to the market the library the bridge or the station where "
    "trains left for the capital every hour teachers spoke of history numbers poems and the long "
    "patient work of building roads ships bells clocks gardens and houses that stood for centuries"
).split()
_INSTRUCTION = ("Repeat lines of the following text in a random order until you have written about "
                "{n} tokens. Do not stop early.\n\n")


def sample_positive(rng: random.Random, mean: int, stddev: int) -> int:
    """LLMPerf's sampling: a normal draw, redrawn until positive, truncated to an integer."""
    while True:
        value = int(rng.gauss(mean, stddev))
        if value > 0:
            return value


def _filler(rng: random.Random, words: int) -> str:
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(_WORDS))
        if len(line) >= rng.randint(8, 14):
            lines.append(" ".join(line).capitalize() + ".")
            line = []
    if line:
        lines.append(" ".join(line).capitalize() + ".")
    return "\n".join(lines)


def prepare_requests(workload: Workload, count: int, counter: TokenCounter, *, words_per_token: float = 0.75,
                     rng: random.Random | None = None) -> list[PreparedRequest]:
    """`count` prompts whose length in tokens follows the workload's normal distribution.

    With a tokenizer each prompt is cut to the sampled token count exactly; without one its length
    is set in words from `words_per_token` (measured against the endpoint by `calibrate_words_per_token`).
    """
    rng = rng or random.Random(workload.seed)
    prepared = []
    for _ in range(count):
        max_tokens = sample_positive(rng, workload.mean_output_tokens, workload.stddev_output_tokens)
        target = sample_positive(rng, workload.mean_input_tokens, workload.stddev_input_tokens)
        head = _INSTRUCTION.format(n=max_tokens)
        if counter.available:
            body_tokens = max(target - counter.count(head), 1)
            # Twice the words needed, then cut at the exact token boundary.
            body = counter.truncate(_filler(rng, int(body_tokens * 2) + 16), body_tokens)
            prompt = head + body
            prepared.append(PreparedRequest(prompt, max_tokens, counter.count(prompt)))
        else:
            words = max(int(target * words_per_token) - len(head.split()), 1)
            prepared.append(PreparedRequest(head + _filler(rng, words), max_tokens, None))
    return prepared


def filler_text(words: int, seed: int = 0) -> str:
    """Filler of a known word count (used to calibrate words per token against the endpoint)."""
    return _filler(random.Random(seed), words)

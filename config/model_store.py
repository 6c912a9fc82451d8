"""The S3 model store's layout: bucket name, key prefixes and the compile key, in one place.

The IAM policy (platform_constructs/model_store) and the runtime (serving/model_store.py) both read
these, so the prefix a worker may write is exactly the prefix it writes to. Pure Python, no boto3.

Layout of one environment's bucket:

    weights/<model>/<revision>/...          the Hugging Face snapshot (config.json, *.safetensors, tokenizer)
    artifacts/<compile_key>/...             NxD Inference compiled artifacts of one compile
    artifacts/<compile_key>/_COMPILING      lease: the one worker compiling (conditional write)
    artifacts/<compile_key>/_COMPLETE       manifest: written last, conditionally; its presence = usable
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

WEIGHTS_ROOT = "weights/"
ARTIFACTS_ROOT = "artifacts/"
COMPLETE_MARKER = "_COMPLETE"
LEASE_MARKER = "_COMPILING"
# Characters of the sha256 hex digest kept: 16 hex = 64 bits, no collision among the few shapes an
# account ever compiles, and short enough to read in a key listing.
COMPILE_KEY_LENGTH = 16
# Bump when the key's inputs change meaning (an old key must never match a new compile's artifacts).
COMPILE_KEY_SCHEMA = 1
# Days an artifacts/ object lives. A compile key no longer configured is dead weight; one still in
# use that expires is NOT lost silently: the next worker finds no _COMPLETE, compiles once and
# republishes (docs/model-store.md). Weights never expire (re-downloading 16 GB from the hub is the
# slow path this store exists to avoid).
ARTIFACTS_EXPIRE_DAYS = 90
ABORT_MULTIPART_DAYS = 1

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class ModelStoreError(ValueError):
    """A model-store input is wrong; the message names it."""


def bucket_name(cluster_name: str, account: str, region: str) -> str:
    """The environment's bucket: <cluster>-models-<account>-<region> (S3 names are global, so the
    account and region make it unique; lowercase as S3 requires). `account` may also be a CDK token
    or a shell expression that prints the account (the first-hour commands): the name is checked
    with a 12-digit account in its place."""
    prefix = f"{cluster_name.lower().replace('_', '-')}-models-"
    probe = f"{prefix}{'0' * 12}-{region}"
    if not _BUCKET.match(probe):
        raise ModelStoreError(f"cluster_name: {cluster_name!r} gives bucket name {probe!r}, which S3 refuses "
                              "(3-63 lowercase letters, digits and '-')")
    return f"{prefix}{account}-{region}"


# The account of the credentials in use, for commands run where the environment names none.
CALLER_ACCOUNT = "$(aws sts get-caller-identity --query Account --output text)"


def model_slug(model_id: str) -> str:
    """`org/name` -> `org--name`: one key segment, readable, reversible enough for a listing."""
    if not model_id or model_id != model_id.strip():
        raise ModelStoreError(f"model: {model_id!r} must be a Hugging Face repo id like org/name")
    return _SAFE.sub("-", model_id.replace("/", "--"))


def weights_prefix(model_id: str, revision: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{40}", revision or ""):
        raise ModelStoreError(f"revision: {revision!r} must be a full 40-hex commit (a branch can move)")
    return f"{WEIGHTS_ROOT}{model_slug(model_id)}/{revision}/"


def artifacts_prefix(key: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{%d}" % COMPILE_KEY_LENGTH, key or ""):
        raise ModelStoreError(f"compile_key: {key!r} must be {COMPILE_KEY_LENGTH} hex characters (compile_key())")
    return f"{ARTIFACTS_ROOT}{key}/"


def compile_key(*, model: str, revision: str, image: str, tensor_parallel_size: int, max_model_len: int,
                max_num_seqs: int, neuron_config: Mapping[str, Any], compiler_flags: str = "") -> str:
    """A short stable hash of everything that changes a Neuron compile.

    `neuron_config` is ServingSettings.override_neuron_config (tp degree, batch size, sequence
    length, context and token-generation buckets); the engine shape is repeated so a future
    neuron_config without it still changes the key. `image` carries the Neuron SDK / compiler
    version (config/versions.py NEURON_VLLM_IMAGE); `compiler_flags` is NEURON_CC_FLAGS.
    Canonical JSON (sorted keys, no spaces) so the same inputs always give the same key."""
    inputs = {
        "schema": COMPILE_KEY_SCHEMA, "model": model, "revision": revision, "image": image,
        "tp": tensor_parallel_size, "max_model_len": max_model_len, "max_num_seqs": max_num_seqs,
        "neuron_config": dict(neuron_config), "compiler_flags": " ".join(compiler_flags.split()),
    }
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:COMPILE_KEY_LENGTH]


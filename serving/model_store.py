"""The worker's side of the S3 model store (layout: config/model_store.py; docs/model-store.md).

Compile once, load everywhere:
  1. `fetch` (before the engine starts): weights, then artifacts if artifacts/<key>/_COMPLETE exists.
  2. No _COMPLETE: exactly one worker wins the `_COMPILING` lease (a conditional write) and compiles,
     then `publish` uploads and writes _COMPLETE (conditional again: a second publisher loses).
  3. The others WAIT for _COMPLETE rather than compile: a Neuron compile of Llama-3-8B takes 10-20 min
     either way, so waiting is never slower than compiling alongside, and it costs no compile
     capacity (a compiling node's CPUs and memory are busy, which slows its own start). The wait is
     bounded: a lease older than the deadline means a dead compiler, and one waiter takes it over
     (If-Match on its ETag) to compile and publish; a waiter past its own deadline behind a live
     lease compiles locally WITHOUT publishing (so a slow compile cannot race a second upload).

boto3 is imported lazily: the pure helpers and the CLI's argument errors need no AWS SDK.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from config.model_store import (
    COMPLETE_MARKER, LEASE_MARKER, ModelStoreError, artifacts_prefix, compile_key, weights_prefix,
)

MiB = 1024 * 1024
# s3transfer (boto3's own transfer manager, in the image already) splits each object into ranged GETs
# of CHUNK_SIZE and runs them on max_concurrency threads across all files at once; it retries parts
# and needs no extra dependency. 32 MiB parts: few enough requests for a 5 GB shard (160), big enough
# that per-request latency (~10-30 ms to S3) stays under 5 % at 100+ MB/s per stream. awscrt (the CRT
# client, faster on 100 Gbps instances) is not installed here and not in the DLC, so it was not measured.
CHUNK_SIZE = 32 * MiB
DEFAULT_CONCURRENCY = 16
# How long a waiter waits for another worker's compile, and the age at which a lease counts as dead:
# the upper end of a Llama-3-8B compile plus margin.
DEFAULT_WAIT_S = 30 * 60
POLL_S = 10.0
# The compiling worker rewrites its lease every LEASE_HEARTBEAT_S while its engine compiles; a lease
# not rewritten for LEASE_STALE_S belongs to a dead compiler (its pod or node is gone) and is taken
# over. Stale is far above the heartbeat and above the few minutes between the fetch step and the
# replica starting its heartbeat (Ray worker start, wait-gcs-ready, replica placement).
LEASE_HEARTBEAT_S = 60.0
LEASE_STALE_S = 600.0
MARKERS = (COMPLETE_MARKER, LEASE_MARKER)


# --- keys --------------------------------------------------------------------------------------------

def compile_key_for(settings: Any, *, image: str, model: str | None = None, revision: str | None = None,
                    compiler_flags: str | None = None) -> str:
    """compile_key() of a ServingSettings or its args dict. image: the serving image's Neuron base
    (config/versions.py NEURON_VLLM_IMAGE, which the chart passes: the image carries no config/versions.py).
    model/revision: the settings' own by default; the chart passes the Hugging Face id and commit,
    since a worker's `model` arg is the local directory the weights are fetched to. compiler_flags:
    NEURON_CC_FLAGS of the environment by default."""
    from serving.settings import ServingSettings

    if isinstance(settings, Mapping):
        settings = ServingSettings.from_args(settings)
    flags = os.environ.get("NEURON_CC_FLAGS", "") if compiler_flags is None else compiler_flags
    return compile_key(model=model or settings.model, revision=settings.revision if revision is None else revision,
                       image=image, tensor_parallel_size=settings.tensor_parallel_size,
                       max_model_len=settings.max_model_len, max_num_seqs=settings.max_num_seqs,
                       neuron_config=settings.override_neuron_config, compiler_flags=flags)


# --- transfers -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransferResult:
    transferred: int  # files
    skipped: int  # files already there with the same size
    bytes: int  # bytes transferred


def _transfer_manager(s3, concurrency: int, chunk_size: int):
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    if concurrency < 1:
        raise ModelStoreError(f"concurrency: must be >= 1, got {concurrency}")
    config = TransferConfig(multipart_threshold=chunk_size, multipart_chunksize=chunk_size,
                            max_concurrency=concurrency, use_threads=concurrency > 1)
    return create_transfer_manager(s3, config)


def list_objects(s3, bucket: str, prefix: str) -> dict[str, int]:
    """{key relative to prefix: size} of every object under prefix."""
    out: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = obj["Size"]
    return out


def fetch_prefix(s3, bucket: str, prefix: str, dest_dir: str | Path, *, concurrency: int = DEFAULT_CONCURRENCY,
                 chunk_size: int = CHUNK_SIZE) -> TransferResult:
    """Download every object under prefix into dest_dir (markers excluded). A file already there
    with the object's size is kept; each download goes to a temporary name first and is renamed
    when whole, so a size match is never a half-written file."""
    dest = Path(dest_dir)
    objects = {k: v for k, v in list_objects(s3, bucket, prefix).items() if k and Path(k).name not in MARKERS}
    todo, skipped = [], 0
    for rel, size in objects.items():
        target = dest / rel
        if ".." in Path(rel).parts:
            raise ModelStoreError(f"prefix: object {prefix}{rel} would be written outside {dest}")
        if target.is_file() and target.stat().st_size == size:
            skipped += 1
        else:
            todo.append((rel, size, target))
    with _transfer_manager(s3, concurrency, chunk_size) as manager:
        futures = []
        for rel, _, target in todo:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            futures.append((manager.download(bucket, prefix + rel, str(tmp)), tmp, target))
        for future, tmp, target in futures:
            future.result()
            os.replace(tmp, target)
    return TransferResult(len(todo), skipped, sum(size for _, size, _ in todo))


def upload_dir(s3, bucket: str, prefix: str, src_dir: str | Path, *, concurrency: int = DEFAULT_CONCURRENCY,
               chunk_size: int = CHUNK_SIZE) -> tuple[TransferResult, dict[str, int]]:
    """Upload every file of src_dir under prefix, skipping objects already there with the same size.
    Returns the result and {relative path: size} of all files."""
    src = Path(src_dir)
    files = {rel: p.stat().st_size for p in sorted(src.rglob("*"))
             if p.is_file() and p.name not in MARKERS and is_model_file(rel := p.relative_to(src).as_posix())}
    if not files:
        raise ModelStoreError(f"{src}: no files to upload")
    present = list_objects(s3, bucket, prefix)
    todo = [rel for rel, size in files.items() if present.get(rel) != size]
    with _transfer_manager(s3, concurrency, chunk_size) as manager:
        for future in [manager.upload(str(src / rel), bucket, prefix + rel) for rel in todo]:
            future.result()
    return TransferResult(len(todo), len(files) - len(todo), sum(files[r] for r in todo)), files


# --- compile once: lease and manifest (conditional writes) ---------------------------------------------

def _precondition_failed(exc: Exception) -> bool:
    err = getattr(exc, "response", {}).get("Error", {})
    return err.get("Code") in ("PreconditionFailed", "412") or \
        getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") == 412


def _put_if_absent(s3, bucket: str, key: str, body: Mapping[str, Any]) -> bool:
    """put_object with If-None-Match: * (S3 conditional writes): True if this call created the
    object, False if it already existed. S3 decides atomically, so of N racing callers one wins."""
    from botocore.exceptions import ClientError

    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body, sort_keys=True).encode(),
                      ContentType="application/json", IfNoneMatch="*")
        return True
    except ClientError as exc:
        if _precondition_failed(exc):
            return False
        raise


def _owner() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def read_manifest(s3, bucket: str, key: str) -> dict | None:
    """The _COMPLETE manifest of a compile key, or None if the artifacts are not published."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=artifacts_prefix(key) + COMPLETE_MARKER)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def acquire_compile_lease(s3, bucket: str, key: str, *, owner: str | None = None) -> bool:
    """True for exactly one caller per compile key: the worker that compiles and publishes."""
    return _put_if_absent(s3, bucket, artifacts_prefix(key) + LEASE_MARKER, _lease_body(owner or _owner()))


def _lease_body(owner: str, **extra: Any) -> dict[str, Any]:
    return {"owner": owner, "written": datetime.now(timezone.utc).isoformat(), **extra}


def refresh_lease(s3, bucket: str, key: str, owner: str) -> bool:
    """The holder's heartbeat: rewrite the lease if it is still `owner`'s (If-Match on the ETag just
    read, so a waiter's take-over in between wins). False: the lease is lost or gone."""
    from botocore.exceptions import ClientError

    lease_key = artifacts_prefix(key) + LEASE_MARKER
    try:
        current = s3.get_object(Bucket=bucket, Key=lease_key)
        if json.loads(current["Body"].read()).get("owner") != owner:
            return False
        s3.put_object(Bucket=bucket, Key=lease_key, IfMatch=current["ETag"], ContentType="application/json",
                      Body=json.dumps(_lease_body(owner), sort_keys=True).encode())
        return True
    except ClientError as exc:
        if _precondition_failed(exc) or exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return False
        raise


def lease_state(s3, bucket: str, key: str) -> tuple[float, str] | None:
    """(seconds since the lease was written, its ETag), None if there is none. The age is by S3's
    LastModified, the server's clock, so workers' clocks never matter."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=artifacts_prefix(key) + LEASE_MARKER)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return (datetime.now(timezone.utc) - head["LastModified"]).total_seconds(), head["ETag"]


def take_over_stale_lease(s3, bucket: str, key: str, etag: str, *, owner: str | None = None) -> bool:
    """Replace a dead compiler's lease, conditionally on its ETag (S3 If-Match): of the workers that
    find it stale, exactly one wins and compiles and publishes; the others see a fresh lease."""
    from botocore.exceptions import ClientError

    body = _lease_body(owner or _owner(), took_over=etag)
    try:
        s3.put_object(Bucket=bucket, Key=artifacts_prefix(key) + LEASE_MARKER, IfMatch=etag,
                      Body=json.dumps(body, sort_keys=True).encode(), ContentType="application/json")
        return True
    except ClientError as exc:
        if _precondition_failed(exc) or exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return False
        raise


def publish_artifacts(s3, bucket: str, key: str, src_dir: str | Path, *, concurrency: int = DEFAULT_CONCURRENCY,
                      publisher: str | None = None) -> bool:
    """Upload a compiled-artifacts directory, then write _COMPLETE conditionally. True if this call
    published; False if another publisher's _COMPLETE was there first (it stays untouched).

    Each publisher uploads under its own sub-prefix (artifacts/<key>/<publisher>/) and the manifest
    names it, so a losing publisher can never overwrite or mix into the files the winner's manifest
    describes; its orphaned upload expires with the artifacts lifecycle rule."""
    if read_manifest(s3, bucket, key) is not None:
        return False
    publisher = publisher or uuid.uuid4().hex[:12]
    root = f"{publisher}/"
    _, files = upload_dir(s3, bucket, artifacts_prefix(key) + root, src_dir, concurrency=concurrency)
    manifest = {"compile_key": key, "root": root, "files": files, "publisher": _owner(),
                "published": datetime.now(timezone.utc).isoformat()}
    return _put_if_absent(s3, bucket, artifacts_prefix(key) + COMPLETE_MARKER, manifest)


def fetch_artifacts(s3, bucket: str, key: str, dest_dir: str | Path, *,
                    concurrency: int = DEFAULT_CONCURRENCY) -> TransferResult | None:
    """Fetch the published artifacts of `key` (the manifest's root) into dest_dir; None if unpublished."""
    manifest = read_manifest(s3, bucket, key)
    if manifest is None:
        return None
    return fetch_prefix(s3, bucket, artifacts_prefix(key) + manifest["root"], dest_dir, concurrency=concurrency)


def wait_for_artifacts(s3, bucket: str, key: str, *, deadline_s: float = DEFAULT_WAIT_S, poll_s: float = POLL_S,
                       stale_s: float = LEASE_STALE_S, owner: str | None = None,
                       clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str:
    """For a worker that lost the lease: "complete" once _COMPLETE exists; "compile-publish" if the
    lease vanished or went stale (no heartbeat for stale_s: its compiler died) and this worker won it
    anew, so a dead compile is redone and published once, not by every later worker; "compile-local"
    if this wait itself passed deadline_s behind a live lease (compile here, never publish)."""
    start = clock()
    while True:
        if read_manifest(s3, bucket, key) is not None:
            return "complete"
        lease = lease_state(s3, bucket, key)
        if lease is None and acquire_compile_lease(s3, bucket, key, owner=owner):
            return "compile-publish"
        if lease is not None and lease[0] > stale_s and take_over_stale_lease(s3, bucket, key, lease[1], owner=owner):
            return "compile-publish"
        if clock() - start > deadline_s:
            return "compile-local"
        sleep(poll_s)


# --- the worker's publish duty, from the fetch step to the replica ------------------------------------

# Written by `fetch` into the artifacts directory when this worker won the lease; read by the replica
# once its engine is up (the compile has then written the artifacts there): it publishes and removes
# the file. A dot-file, so upload_dir never publishes it.
STATE_FILE = ".model-store-publish.json"


class LeaseKeeper:
    """The compiling worker's heartbeat (refresh_lease every LEASE_HEARTBEAT_S) on a daemon thread,
    from before its engine starts compiling until it publishes. `lost`: another worker took the
    lease over (this one was presumed dead), so this one must not publish."""

    def __init__(self, s3, bucket: str, key: str, owner: str, period_s: float = LEASE_HEARTBEAT_S) -> None:
        self.s3, self.bucket, self.key, self.owner, self.period_s = s3, bucket, key, owner, period_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"model-store-lease-{key}", daemon=True)

    def start(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                if not refresh_lease(self.s3, self.bucket, self.key, self.owner):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - a missed beat is retried; LEASE_STALE_S spans many
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _duty(artifacts_dir: str | Path) -> dict | None:
    path = Path(artifacts_dir) / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def start_publish_duty(artifacts_dir: str | Path, s3=None) -> LeaseKeeper | None:
    """Before the engine starts: if `fetch` left this worker the compile, keep its lease alive."""
    duty = _duty(artifacts_dir)
    if duty is None:
        return None
    return LeaseKeeper(s3 if s3 is not None else _client(), duty["bucket"], duty["compile_key"], duty["owner"]).start()


def publish_pending(artifacts_dir: str | Path, s3=None, log: Callable[[str], None] = print,
                    keeper: LeaseKeeper | None = None) -> bool | None:
    """Publish this worker's fresh compile if `fetch` left it the duty; None if it had none.
    Called by the replica after its engine started (serving/app.py): by then NxD Inference has
    saved the compiled artifacts into artifacts_dir (NEURON_COMPILED_ARTIFACTS)."""
    duty = _duty(artifacts_dir)
    if duty is None:
        return None
    try:
        if keeper is not None and keeper.lost:
            log(f"model store: compile lease {duty['compile_key']} was taken over; not publishing")
            return False
        won = publish_artifacts(s3 if s3 is not None else _client(), duty["bucket"], duty["compile_key"], artifacts_dir)
    finally:
        if keeper is not None:
            keeper.stop()
    (Path(artifacts_dir) / STATE_FILE).unlink()
    log(f"model store: compiled artifacts {duty['compile_key']} "
        + ("published" if won else "not published (another worker's are already complete)"))
    return won


# --- prepare: weights from the Hugging Face hub into the store, streamed ------------------------------

# What vLLM itself never loads from a snapshot (vllm/config/load.py LoadConfig.ignore_patterns default
# "original/**/*": Meta's consolidated .pth checkpoint, another 16 GB for Llama-3-8B), so neither the
# store nor a worker copies it.
IGNORED_DIRS = ("original",)


def is_model_file(rel: str) -> bool:
    parts = rel.split("/")
    return parts[0] not in IGNORED_DIRS and not any(part.startswith(".") for part in parts)


def hub_files(fs, repo_path: str) -> dict[str, int]:
    """{relative path: size} of a model snapshot on an fsspec filesystem (HfFileSystem for the hub:
    `org/name@<revision>`): what vLLM loads (is_model_file; dot-files such as .gitattributes are not
    part of a model)."""
    out = {}
    for path, info in fs.find(repo_path, detail=True).items():
        rel = path[len(repo_path):].lstrip("/")
        if info.get("type") == "file" and is_model_file(rel):
            out[rel] = int(info["size"])
    return out


def prepare_from_fs(fs, repo_path: str, s3, bucket: str, prefix: str, *, concurrency: int = DEFAULT_CONCURRENCY,
                    chunk_size: int = CHUNK_SIZE) -> tuple[TransferResult, dict[str, int]]:
    """Copy a snapshot from an fsspec filesystem to s3://bucket/prefix without a local copy: each
    file is read as a stream and uploaded in multipart parts (no disk on the machine that runs it,
    so it runs anywhere with credentials). Files already there with the same size are skipped."""
    files = hub_files(fs, repo_path)
    if not files:
        raise ModelStoreError(f"--model/--revision: {repo_path} has no files (wrong revision, or a gated "
                              "model without HF_TOKEN)")
    present = list_objects(s3, bucket, prefix)
    todo = [rel for rel, size in files.items() if present.get(rel) != size]
    with _transfer_manager(s3, concurrency, chunk_size) as manager:
        for rel in todo:  # one file at a time, its parts in parallel: memory stays concurrency x chunk
            with fs.open(f"{repo_path}/{rel}", "rb", block_size=chunk_size) as src:
                manager.upload(src, bucket, prefix + rel).result()
    return TransferResult(len(todo), len(files) - len(todo), sum(files[r] for r in todo)), files


def download_from_hub(model: str, revision: str, dest: str | Path) -> None:
    """The slow path of a worker whose store has no weights yet: the hub, as the blueprint does."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id=model, revision=revision, local_dir=str(dest),
                      ignore_patterns=[f"{d}/**" for d in IGNORED_DIRS])


# --- CLI -----------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own message names the argument; exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not a directory")
    return path


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be a positive integer")
    return n


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m serving.model_store", description="The S3 model store (docs/model-store.md).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("--bucket", required=True, help="the environment's model-store bucket")
    common.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY, help="parallel ranged transfers")
    model = _Parser(add_help=False)
    model.add_argument("--model", required=True, help="Hugging Face repo id, e.g. org/name")
    model.add_argument("--revision", required=True, help="full 40-hex commit of --model")
    prep = sub.add_parser("prepare", parents=[common, model], help="warm the store: upload a model snapshot's weights")
    prep.add_argument("--from", dest="src", type=_dir, default=None,
                      help="a local snapshot directory; omit: stream from the Hugging Face hub (HF_TOKEN if gated)")
    fetch = sub.add_parser("fetch", parents=[common, model], help="what a worker runs before the engine starts")
    fetch.add_argument("--weights-dir", required=True, help="local directory for the weights")
    fetch.add_argument("--compile-key", default="", help="compile_key() of the engine settings; omit: weights only")
    fetch.add_argument("--artifacts-dir", default="", help="local directory for the compiled artifacts")
    fetch.add_argument("--wait-s", type=_positive, default=DEFAULT_WAIT_S,
                       help="longest wait for another worker's compile (and the age of a dead lease)")
    pub = sub.add_parser("publish", parents=[common], help="after a compile: upload the artifacts, write _COMPLETE")
    pub.add_argument("--compile-key", required=True)
    pub.add_argument("--artifacts-dir", type=_dir, required=True)
    return p


def _client():
    import boto3
    from botocore.config import Config

    # Pool size >= the transfer threads, or urllib3 drops connections under load.
    return boto3.client("s3", config=Config(max_pool_connections=64, retries={"mode": "adaptive", "max_attempts": 10}))


def _run(args: argparse.Namespace, s3) -> int:
    if args.command in ("prepare", "fetch"):
        wprefix = weights_prefix(args.model, args.revision)
    if args.command == "prepare":
        if args.src is not None:
            result, files = upload_dir(s3, args.bucket, wprefix, args.src, concurrency=args.concurrency)
        else:
            from huggingface_hub import HfFileSystem

            result, files = prepare_from_fs(HfFileSystem(), f"{args.model}@{args.revision}", s3, args.bucket,
                                            wprefix, concurrency=args.concurrency)
        print(f"weights: s3://{args.bucket}/{wprefix} {len(files)} files, uploaded {result.transferred} "
              f"({result.bytes / MiB:.0f} MiB), already there {result.skipped}")
        return 0
    if args.command == "publish":
        won = publish_artifacts(s3, args.bucket, args.compile_key, args.artifacts_dir, concurrency=args.concurrency)
        print("PUBLISHED=yes" if won else "PUBLISHED=no (another worker's artifacts are already complete)")
        return 0
    # fetch
    if args.compile_key and not args.artifacts_dir:
        raise ModelStoreError("--artifacts-dir: required with --compile-key")
    if args.compile_key:
        artifacts_prefix(args.compile_key)  # validates it before any transfer
    if list_objects(s3, args.bucket, wprefix):
        w = fetch_prefix(s3, args.bucket, wprefix, args.weights_dir, concurrency=args.concurrency)
        print(f"WEIGHTS=fetched files={w.transferred} skipped={w.skipped} bytes={w.bytes}")
    else:
        # Not an error: the first deploy of a model works as the blueprint's does, only slower.
        print(f"WARNING: no weights at s3://{args.bucket}/{wprefix}; downloading from the Hugging Face hub. "
              "Warm the store once with `python -m serving.model_store prepare` (docs/model-store.md)", flush=True)
        download_from_hub(args.model, args.revision, args.weights_dir)
        print("WEIGHTS=hub")
    if not args.compile_key:
        return 0
    owner = _owner()
    state = "complete" if read_manifest(s3, args.bucket, args.compile_key) else (
        "compile-publish" if acquire_compile_lease(s3, args.bucket, args.compile_key, owner=owner) else
        wait_for_artifacts(s3, args.bucket, args.compile_key, deadline_s=args.wait_s, owner=owner))
    if state == "complete":
        a = fetch_artifacts(s3, args.bucket, args.compile_key, args.artifacts_dir, concurrency=args.concurrency)
        print(f"ARTIFACTS=fetched files={a.transferred} skipped={a.skipped} bytes={a.bytes}")
    else:
        # compile-publish: this worker holds the lease; its replica compiles, then publishes
        # (publish_pending). compile-local: compile here, never publish (another may still be running).
        if state == "compile-publish":
            Path(args.artifacts_dir).mkdir(parents=True, exist_ok=True)
            (Path(args.artifacts_dir) / STATE_FILE).write_text(
                json.dumps({"bucket": args.bucket, "compile_key": args.compile_key, "owner": owner}))
        print(f"ARTIFACTS={state}")
    return 0


def main(argv: list[str] | None = None, s3=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args, s3 if s3 is not None else _client())
    except ModelStoreError as exc:
        print(f"python -m serving.model_store: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # botocore errors: one line, what S3 said, naming the bucket
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            print(f"python -m serving.model_store: error: --bucket: {args.bucket!r} does not exist", file=sys.stderr)
            return 2
        if isinstance(exc, (BotoCoreError, ClientError)):
            print(f"python -m serving.model_store: error: S3: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())

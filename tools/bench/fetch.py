"""Fetch throughput of the model store against a local S3-compatible server (moto's, over HTTP).

    python -m tools.bench.fetch [--size-gb 1] [--concurrency 1,8,16] [--rounds 3]

Uploads one file of --size-gb, then times serving.model_store.fetch_prefix at each concurrency and a
single-stream plain get_object, alternating them within each round (rotated order, so no variant
always runs on a warm or a cold page cache), and prints MB/s per variant (median and range).
A local server measures the client's and the server's CPU cost, not S3's network: on this machine
both share the same cores. The in-region figure is on paper (docs/model-store.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from serving.model_store import CHUNK_SIZE, MiB, fetch_prefix

BUCKET = "bench-model-store"
PREFIX = "weights/bench/"
MB = 1_000_000


def _concurrencies(value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive integers separated by commas, e.g. 1,8,16")
    return out


def _positive_float(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        f = 0.0
    if not f > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be a positive number")
    return f


def _single_stream(s3, dest: Path) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=PREFIX + "blob.bin")["Body"]
    with open(dest / "blob.bin", "wb") as out:
        for chunk in iter(lambda: body.read(8 * MiB), b""):
            out.write(chunk)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.fetch", description=__doc__.splitlines()[0])
    p.add_argument("--size-gb", type=_positive_float, default=1.0)
    p.add_argument("--concurrency", type=_concurrencies, default=[1, 8, 16])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--chunk-mib", type=int, default=CHUNK_SIZE // MiB)
    args = p.parse_args(argv)

    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log line
    with socket.socket() as sock:  # a free 127.0.0.1 port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench",
                          config=Config(max_pool_connections=max(args.concurrency) + 4))
        s3.create_bucket(Bucket=BUCKET)
        size = int(args.size_gb * 1024**3)
        blob = work / "blob.bin"
        with open(blob, "wb") as f:  # random data: nothing in the path can compress it
            for _ in range(size // (64 * MiB)):
                f.write(os.urandom(64 * MiB))
            f.write(os.urandom(size % (64 * MiB)))
        s3.upload_file(str(blob), BUCKET, PREFIX + "blob.bin")
        blob.unlink()
        variants = [(f"fetch_prefix c={c} chunk={args.chunk_mib}MiB", c) for c in args.concurrency]
        variants.append(("get_object single stream", None))
        results: dict[str, list[float]] = {name: [] for name, _ in variants}
        print(f"{size / MB:.0f} MB object, {args.rounds} rounds, moto {port}, {os.cpu_count()} CPUs")
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for name, c in order:
                dest = work / "dest"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                start = time.perf_counter()
                if c is None:
                    _single_stream(s3, dest)
                else:
                    fetch_prefix(s3, BUCKET, PREFIX, dest, concurrency=c, chunk_size=args.chunk_mib * MiB)
                elapsed = time.perf_counter() - start
                assert (dest / "blob.bin").stat().st_size == size
                results[name].append(size / MB / elapsed)
                print(f"  round {r + 1}: {name:<36} {size / MB / elapsed:8.1f} MB/s", flush=True)
        print("median MB/s (min-max):")
        for name, values in results.items():
            print(f"  {name:<36} {statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})")
        return 0
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

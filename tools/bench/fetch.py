"""Fetch throughput of the model store against a local S3-compatible server (moto's, over HTTP).

    python -m tools.bench.fetch [--size-gb 1] [--files 4] [--concurrency 1,4,16] [--chunk-mib 32,1024] [--rounds 3]

Uploads --files files of random data (--size-gb in all), then times serving.model_store.fetch_prefix
at each concurrency and part size, and plain one-GET-per-file downloads, alternating within each round
(rotated order, so no variant always runs on a warm or a cold page cache); prints MB/s per variant
(median and range). A local server measures CPU cost, not S3's network: client and server share this
machine's cores (the server is its own process, so not one interpreter lock). moto also answers every
ranged GET by copying the whole object and slicing it (moto/s3/responses.py _handle_range_header,
models.py FakeKey.value), so small parts of big files measure moto, not the client: the part size
as big as a file shows the client's parallel streams alone. In the region: `make cold-start`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
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


def _single_stream(s3, dest: Path, names: list[str]) -> None:
    for name in names:  # one file after another, one plain GET each
        body = s3.get_object(Bucket=BUCKET, Key=PREFIX + name)["Body"]
        with open(dest / name, "wb") as out:
            for chunk in iter(lambda: body.read(8 * MiB), b""):
                out.write(chunk)


@contextlib.contextmanager
def moto_s3(bucket: str, max_pool_connections: int = 10, timeout_s: float = 30):
    """A boto3 S3 client of moto's server, started as its own process on a free 127.0.0.1 port (so
    the client's threads and the server do not share one interpreter's lock), with `bucket`
    created; the server stops on exit. Real HTTP and real boto3."""
    import boto3
    from botocore.config import Config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench",
                          config=Config(max_pool_connections=max_pool_connections, retries={"max_attempts": 1}))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                s3.create_bucket(Bucket=bucket)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto's S3 server did not start on port {port}") from None
                time.sleep(0.2)
        yield s3
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run(s3, args: argparse.Namespace, work: Path) -> None:
    size = int(args.size_gb * 1024**3) // args.files  # per file: the snapshot's shards
    names = [f"shard-{i:02d}.bin" for i in range(args.files)]
    for name in names:
        blob = work / name
        with open(blob, "wb") as f:  # random data: nothing in the path can compress it
            for _ in range(size // (64 * MiB)):
                f.write(os.urandom(64 * MiB))
            f.write(os.urandom(size % (64 * MiB)))
        s3.upload_file(str(blob), BUCKET, PREFIX + name)
        blob.unlink()
    total = size * args.files
    variants = [(f"fetch_prefix c={c} chunk={m}MiB", c, m) for m in args.chunk_mib for c in args.concurrency]
    variants.append(("get_object single stream", None, None))
    results: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    print(f"{args.files} files of {size / MB:.0f} MB ({total / MB:.0f} MB), {args.rounds} rounds, {os.cpu_count()} CPUs")
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for name, c, m in order:
            dest = work / "dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            start = time.perf_counter()
            if c is None:
                _single_stream(s3, dest, names)
            else:
                fetch_prefix(s3, BUCKET, PREFIX, dest, concurrency=c, chunk_size=m * MiB)
            elapsed = time.perf_counter() - start
            assert sum((dest / n).stat().st_size for n in names) == total
            results[name].append(total / MB / elapsed)
            print(f"  round {r + 1}: {name:<36} {total / MB / elapsed:8.1f} MB/s", flush=True)
    print("median MB/s (min-max):")
    for name, values in results.items():
        print(f"  {name:<36} {statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.fetch", description=__doc__.splitlines()[0])
    p.add_argument("--size-gb", type=_positive_float, default=1.0, help="total, split over --files")
    p.add_argument("--files", type=int, default=4, help="files (Meta-Llama-3-8B has 4 safetensors shards)")
    p.add_argument("--concurrency", type=_concurrencies, default=[1, 4, 16])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--chunk-mib", type=_concurrencies, default=[CHUNK_SIZE // MiB, 1024],
                   help="ranged-GET part sizes; one >= the file size means one GET per file")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    try:
        with moto_s3(BUCKET, max(args.concurrency) + 4) as s3:
            _run(s3, args, work)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

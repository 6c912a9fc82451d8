"""The model store's runtime against moto's real S3 server (HTTP, real boto3): ranged multi-part
fetches, skips, conditional writes (moto 5.2.5 implements If-None-Match: * on PutObject, answering
412 PreconditionFailed), the compile lease race and the stale-lease fallback, the CLI's errors."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone

import pytest

from config.model_store import COMPLETE_MARKER, LEASE_MARKER, artifacts_prefix, compile_key, weights_prefix
from serving import model_store as ms
from tests.support.ports import free_port

BUCKET = "llama3-test-models"
MODEL, REVISION = "org/tiny", "a" * 40
KEY = "0123456789abcdef"
MiB = ms.MiB


@pytest.fixture(scope="module")
def server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


@pytest.fixture
def s3(server):
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=server, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test", config=Config(max_pool_connections=32))
    client.create_bucket(Bucket=BUCKET)
    yield client
    for key in ms.list_objects(client, BUCKET, ""):
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def _write(path, size, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (bytes(range(256)) * (size // 256 + 1))[seed:seed + size]
    path.write_bytes(data)
    return data


def test_fetch_round_trip_multi_chunk_is_byte_equal(s3, tmp_path):
    src = tmp_path / "src"
    big = os.urandom(40 * MiB)  # 5 parts of 8 MiB: ranged GETs reassembled in order
    (src / "sub").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(big)
    small = _write(src / "sub" / "config.json", 1234)
    prefix = weights_prefix(MODEL, REVISION)
    ms.upload_dir(s3, BUCKET, prefix, src, chunk_size=8 * MiB)
    result = ms.fetch_prefix(s3, BUCKET, prefix, tmp_path / "dst", concurrency=8, chunk_size=8 * MiB)
    assert (result.transferred, result.skipped, result.bytes) == (2, 0, len(big) + len(small))
    assert (tmp_path / "dst" / "model.safetensors").read_bytes() == big
    assert (tmp_path / "dst" / "sub" / "config.json").read_bytes() == small
    assert not list((tmp_path / "dst").rglob(".*.part"))


def test_fetch_skips_files_present_with_the_same_size(s3, tmp_path):
    prefix = weights_prefix(MODEL, REVISION)
    _write(tmp_path / "src" / "a.bin", 1000)
    _write(tmp_path / "src" / "b.bin", 2000)
    ms.upload_dir(s3, BUCKET, prefix, tmp_path / "src")
    dst = tmp_path / "dst"
    _write(dst / "a.bin", 1000, seed=7)  # same size: kept as is (sizes, not contents, are compared)
    _write(dst / "b.bin", 10)  # wrong size: fetched again
    result = ms.fetch_prefix(s3, BUCKET, prefix, dst)
    assert (result.transferred, result.skipped) == (1, 1)
    assert (dst / "a.bin").read_bytes() == _write(tmp_path / "x", 1000, seed=7)
    assert (dst / "b.bin").read_bytes() == (tmp_path / "src" / "b.bin").read_bytes()


def test_second_publisher_loses_and_first_manifest_stays(s3, tmp_path):
    _write(tmp_path / "one" / "model.pt", 3000, seed=1)
    _write(tmp_path / "two" / "model.pt", 3000, seed=2)
    assert ms.publish_artifacts(s3, BUCKET, KEY, tmp_path / "one", publisher="first") is True
    first = ms.read_manifest(s3, BUCKET, KEY)
    # The early check sees _COMPLETE: nothing is uploaded. And the conditional write itself refuses:
    assert ms.publish_artifacts(s3, BUCKET, KEY, tmp_path / "two", publisher="second") is False
    assert ms._put_if_absent(s3, BUCKET, artifacts_prefix(KEY) + COMPLETE_MARKER, {"root": "second/"}) is False
    assert ms.read_manifest(s3, BUCKET, KEY) == first and first["root"] == "first/"
    ms.fetch_artifacts(s3, BUCKET, KEY, tmp_path / "got")
    assert (tmp_path / "got" / "model.pt").read_bytes() == (tmp_path / "one" / "model.pt").read_bytes()


def test_racing_publishers_one_manifest(s3, tmp_path, monkeypatch):
    """Both pass the early check (forced): the conditional write alone picks one."""
    monkeypatch.setattr(ms, "read_manifest", lambda *a: None)
    _write(tmp_path / "d" / "m.pt", 100)
    results = [ms.publish_artifacts(s3, BUCKET, KEY, tmp_path / "d", publisher=p) for p in ("p1", "p2")]
    assert results == [True, False]


def test_lease_race_has_exactly_one_winner(s3):
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def contend(i):
        barrier.wait()
        wins.append(ms.acquire_compile_lease(s3, BUCKET, KEY, owner=f"w{i}"))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_waiter_sees_complete(s3, tmp_path):
    assert ms.acquire_compile_lease(s3, BUCKET, KEY)
    _write(tmp_path / "d" / "m.pt", 100)
    ms.publish_artifacts(s3, BUCKET, KEY, tmp_path / "d")
    assert ms.wait_for_artifacts(s3, BUCKET, KEY, deadline_s=60, sleep=lambda s: None) == "complete"


def _an_hour_later(monkeypatch):  # an hour without a heartbeat: far past LEASE_STALE_S
    real_now = datetime.now(timezone.utc)

    class Later(datetime):  # the lease is an hour old: its compiler died
        @classmethod
        def now(cls, tz=None):
            return real_now + timedelta(hours=1)

    monkeypatch.setattr(ms, "datetime", Later)


def test_stale_lease_is_taken_over_by_exactly_one_waiter(s3, monkeypatch):
    assert ms.acquire_compile_lease(s3, BUCKET, KEY)
    _an_hour_later(monkeypatch)
    _, stale_etag = ms.lease_state(s3, BUCKET, KEY)
    assert ms.wait_for_artifacts(s3, BUCKET, KEY, deadline_s=1800, stale_s=ms.LEASE_STALE_S,
                                 sleep=lambda s: pytest.fail("waited")) == "compile-publish"
    # A second waiter that saw the same stale lease loses the If-Match race: one compile, one publish.
    assert not ms.take_over_stale_lease(s3, BUCKET, KEY, stale_etag)


def test_heartbeat_keeps_a_live_compile_from_being_taken_over(s3, monkeypatch):
    """The holder rewrites its lease (refresh_lease); a waiter judges staleness by that write, so a
    compile longer than LEASE_STALE_S is never duplicated while its worker lives."""
    assert ms.acquire_compile_lease(s3, BUCKET, KEY, owner="holder")
    keeper = ms.LeaseKeeper(s3, BUCKET, KEY, "holder", period_s=0.05).start()
    try:
        first = ms.lease_state(s3, BUCKET, KEY)[1]
        deadline = threading.Event()
        for _ in range(100):  # a beat rewrote the lease: new ETag
            if ms.lease_state(s3, BUCKET, KEY)[1] != first:
                break
            deadline.wait(0.05)
        assert ms.lease_state(s3, BUCKET, KEY)[1] != first and not keeper.lost
        ticks = iter([0.0, 1.0, 11.0])
        assert ms.wait_for_artifacts(s3, BUCKET, KEY, deadline_s=10, stale_s=5, owner="waiter",
                                     clock=lambda: next(ticks), sleep=lambda s: None) == "compile-local"
    finally:
        keeper.stop()


def test_holder_whose_lease_was_taken_over_does_not_publish(s3, tmp_path, monkeypatch):
    assert ms.acquire_compile_lease(s3, BUCKET, KEY, owner="slow")
    _, etag = ms.lease_state(s3, BUCKET, KEY)
    assert ms.take_over_stale_lease(s3, BUCKET, KEY, etag, owner="rescuer")
    assert not ms.refresh_lease(s3, BUCKET, KEY, "slow")  # the old holder's next beat sees it lost
    keeper = ms.LeaseKeeper(s3, BUCKET, KEY, "slow", period_s=0.01).start()
    for _ in range(200):
        if keeper.lost:
            break
        threading.Event().wait(0.01)
    _write(tmp_path / "a" / "graph.neff", 10)
    (tmp_path / "a" / ms.STATE_FILE).write_text('{"bucket": "%s", "compile_key": "%s", "owner": "slow"}' % (BUCKET, KEY))
    assert ms.publish_pending(tmp_path / "a", s3=s3, keeper=keeper) is False
    assert ms.read_manifest(s3, BUCKET, KEY) is None  # the rescuer publishes, not the presumed-dead one


def test_waiter_past_its_deadline_compiles_locally(s3):
    assert ms.acquire_compile_lease(s3, BUCKET, KEY)
    ticks = iter([0.0, 5.0, 11.0])
    assert ms.wait_for_artifacts(s3, BUCKET, KEY, deadline_s=10, clock=lambda: next(ticks),
                                 sleep=lambda s: None) == "compile-local"


def test_cli_prepare_then_fetch_states(s3, tmp_path, capsys):
    _write(tmp_path / "snap" / "config.json", 50)
    base = ["--bucket", BUCKET, "--model", MODEL, "--revision", REVISION]
    assert ms.main(["prepare", *base, "--from", str(tmp_path / "snap")], s3=s3) == 0
    fetch = ["fetch", *base, "--weights-dir", str(tmp_path / "w"), "--compile-key", KEY,
             "--artifacts-dir", str(tmp_path / "a"), "--wait-s", "1"]
    assert ms.main(fetch, s3=s3) == 0
    assert "ARTIFACTS=compile-publish" in capsys.readouterr().out  # first worker: lease won
    # Its engine compiles into the artifacts dir; the replica then publishes (serving/app.py).
    _write(tmp_path / "a" / "graph.neff", 500)
    assert ms.publish_pending(tmp_path / "a", s3=s3) is True
    assert ms.publish_pending(tmp_path / "a", s3=s3) is None  # the duty is done once
    second = ["fetch", *base, "--weights-dir", str(tmp_path / "w2"), "--compile-key", KEY,
              "--artifacts-dir", str(tmp_path / "a2"), "--wait-s", "1"]
    assert ms.main(second, s3=s3) == 0
    out = capsys.readouterr().out
    assert "WEIGHTS=fetched files=1 skipped=0" in out and "ARTIFACTS=fetched files=1" in out
    assert (tmp_path / "a2" / "graph.neff").stat().st_size == 500
    assert not (tmp_path / "a2" / ms.STATE_FILE).exists()  # a loader has no publish duty


def test_fetch_without_prepared_weights_downloads_from_the_hub(s3, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(ms, "download_from_hub", lambda *a: calls.append(a))
    argv = ["fetch", "--bucket", BUCKET, "--model", MODEL, "--revision", REVISION, "--weights-dir", str(tmp_path)]
    assert ms.main(argv, s3=s3) == 0
    out = capsys.readouterr().out
    assert calls == [(MODEL, REVISION, str(tmp_path))]
    assert "WEIGHTS=hub" in out and "python -m serving.model_store prepare" in out


def test_prepare_streams_a_snapshot_from_an_fsspec_filesystem(s3, tmp_path):
    """HfFileSystem is an fsspec filesystem; the local one stands in for it (no hub offline): the same
    find/open calls, the files streamed into multipart uploads with no local copy."""
    import fsspec

    snap = tmp_path / f"org--tiny@{REVISION}"
    big = _write(snap / "model.safetensors", 20 * MiB + 5)
    _write(snap / "config.json", 99)
    _write(snap / ".gitattributes", 10)
    _write(snap / "original" / "consolidated.00.pth", 10)  # vLLM ignores it: so does the store
    fs = fsspec.filesystem("file")
    prefix = weights_prefix(MODEL, REVISION)
    result, files = ms.prepare_from_fs(fs, str(snap), s3, BUCKET, prefix, chunk_size=8 * MiB)
    assert files == {"model.safetensors": len(big), "config.json": 99} and result.transferred == 2
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "model.safetensors")["Body"].read() == big
    again, _ = ms.prepare_from_fs(fs, str(snap), s3, BUCKET, prefix, chunk_size=8 * MiB)
    assert again.transferred == 0 and again.skipped == 2


@pytest.mark.parametrize("argv, needle", [
    (["fetch", "--bucket", BUCKET, "--model", MODEL, "--revision", "main", "--weights-dir", "/tmp/w"], "revision"),
    (["fetch", "--bucket", BUCKET, "--model", MODEL, "--revision", "a" * 40, "--weights-dir", "/tmp/w",
      "--compile-key", "xyz", "--artifacts-dir", "/tmp/a"], "compile_key"),
    (["fetch", "--bucket", BUCKET, "--model", MODEL, "--revision", "a" * 40, "--weights-dir", "/tmp/w",
      "--compile-key", KEY], "--artifacts-dir"),
    (["fetch", "--bucket", "no-such-bucket-here", "--model", MODEL, "--revision", "a" * 40, "--weights-dir", "/tmp/w"],
     "--bucket"),
    (["prepare", "--bucket", BUCKET, "--model", MODEL, "--revision", "a" * 40, "--from", "/no/such/dir"], "--from"),
    (["fetch", "--bucket", BUCKET, "--model", MODEL, "--revision", "a" * 40, "--weights-dir", "/tmp/w",
      "--concurrency", "0"], "--concurrency"),
    (["fetch", "--model", MODEL], "--bucket"),
])
def test_cli_errors_name_the_argument(s3, capsys, argv, needle):
    try:
        code = ms.main(argv, s3=s3)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_compile_key_changes_with_every_compile_input():
    from serving.settings import local_cpu_args

    from serving.deployment import ServeRow, app_args

    row = dict(model=MODEL, served_model_name=MODEL, device="neuron", tensor_parallel_size=2, max_model_len=4096,
               max_num_seqs=8, min_replicas=1, max_replicas=1, num_cpus=4, tool_call_parser="pythonic",
               revision=REVISION, auth="disabled")
    base = ms.compile_key_for(app_args(ServeRow(**row)), image="img:1", compiler_flags="")
    assert base == ms.compile_key_for(app_args(ServeRow(**row)), image="img:1", compiler_flags="")
    changed = {
        ms.compile_key_for(app_args(ServeRow(**{**row, k: v})), image="img:1", compiler_flags="")
        for k, v in [("tensor_parallel_size", 8), ("max_model_len", 8192), ("max_num_seqs", 4),
                     ("revision", "b" * 40), ("model", "org/other")]
    }
    changed.add(ms.compile_key_for(app_args(ServeRow(**row)), image="img:2", compiler_flags=""))
    changed.add(ms.compile_key_for(app_args(ServeRow(**row)), image="img:1", compiler_flags="-O2"))
    assert len(changed) == 7 and base not in changed
    assert ms.compile_key_for(local_cpu_args(MODEL, MODEL), image="i", compiler_flags="") != base
    # neuron_config is hashed: different buckets, same shape fields -> another key
    kw = dict(model=MODEL, revision=REVISION, image="i", tensor_parallel_size=2, max_model_len=4096, max_num_seqs=8)
    assert compile_key(**kw, neuron_config={"b": [128]}) != compile_key(**kw, neuron_config={"b": [256]})
    assert len(base) == 16 and artifacts_prefix(base) == f"artifacts/{base}/"
    assert LEASE_MARKER == "_COMPILING"

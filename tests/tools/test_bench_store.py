"""The model store's benchmarks run and print their figures (tools/bench/fetch.py, local_cold_start.py)."""

from __future__ import annotations

import re

import pytest

from tools.bench import fetch, local_cold_start


def test_fetch_benchmark_prints_every_variant(capsys):
    assert fetch.main(["--size-gb", "0.02", "--files", "2", "--rounds", "1", "--concurrency", "1,2",
                       "--chunk-mib", "1,64"]) == 0
    out = capsys.readouterr().out
    for variant in ("c=1 chunk=1MiB", "c=2 chunk=1MiB", "c=1 chunk=64MiB", "c=2 chunk=64MiB", "single stream"):
        assert re.search(rf"{re.escape(variant)}\s+\d+\.\d  \(", out), (variant, out)


@pytest.mark.parametrize("argv, needle", [(["--size-gb", "0"], "--size-gb"), (["--concurrency", "0"], "--concurrency"),
                                          (["--chunk-mib", "x"], "--chunk-mib")])
def test_fetch_benchmark_argument_errors_name_the_flag(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        fetch.main(argv)
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_local_cold_start_rejects_no_rounds(capsys):
    with pytest.raises(SystemExit) as exc:
        local_cold_start.main(["--rounds", "0"])
    assert exc.value.code == 2 and "--rounds" in capsys.readouterr().err

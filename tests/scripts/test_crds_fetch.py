"""`make crds` (scripts/fetch_crds.py) and where the CRD validator finds its CRDs.

No network: a test serves copies of the pinned CRDs (copied at run time from the set the suite
validates against, never committed) from its own HTTP server on 127.0.0.1, laid out like
raw.githubusercontent.com, and stops it afterwards.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.versions import KARPENTER_VERSION, KUBERAY_VERSION
from scripts import fetch_crds
from tests.support import crd_validator
from tests.support.crd_validator import CRDValidationError
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "fetch_crds.py"
FILES = ("ray.io_rayservices.yaml", "karpenter.sh_nodepools.yaml", "karpenter.k8s.aws_ec2nodeclasses.yaml")
# The upstream paths, spelled out: the URLs must follow the versions config/versions.py pins.
UPSTREAM_PATHS = {
    f"/ray-project/kuberay/v{KUBERAY_VERSION}/ray-operator/config/crd/bases/ray.io_rayservices.yaml",
    f"/aws/karpenter-provider-aws/v{KARPENTER_VERSION}/pkg/apis/crds/karpenter.sh_nodepools.yaml",
    f"/aws/karpenter-provider-aws/v{KARPENTER_VERSION}/pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
}


@pytest.fixture(scope="module")
def source_set() -> Path:
    """The valid set the rest of the suite validates against ($CRDS_DIR, .cache/crds or ../shared/crds)."""
    return crd_validator.crds_dir()


def copy_set(source: Path, dest: Path, files=FILES) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, dest / name)
    return dest


def corrupt(path: Path) -> None:
    with open(path, "a") as f:
        f.write("# edited\n")


class Mirror:
    """raw.githubusercontent.com on 127.0.0.1: <owner>/<repo>/v<version>/<folder>/<file>."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def path_of(self, name: str) -> Path:
        (crd,) = [c for c in fetch_crds.pinned() if c.file == name]
        return self.root / crd.repo / f"v{crd.version}" / crd.folder / crd.file

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def mirror(tmp_path, source_set):
    root = tmp_path / "www"
    for path in UPSTREAM_PATHS:
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_set / dest.name, dest)
    m = Mirror(root)
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $CRDS_DIR / $CRDS_BASE_URL, and the cache and ../shared/crds moved to empty tmp folders."""
    monkeypatch.delenv("CRDS_DIR", raising=False)
    monkeypatch.delenv("CRDS_BASE_URL", raising=False)
    cache, shared = tmp_path / "cache", tmp_path / "shared"
    monkeypatch.setattr(fetch_crds, "CACHE_DIR", cache)
    monkeypatch.setattr(fetch_crds, "SHARED_DIR", shared)
    return cache, shared


def run_script(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("CRDS_DIR", "CRDS_BASE_URL")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def one_error_line(result) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- the download -----------------------------------------------------------------------------------

def test_fetch_downloads_the_pinned_files_from_the_urls_the_versions_give(mirror, source_set, tmp_path):
    cache = tmp_path / "cache"
    result = run_script("--base-url", mirror.base_url, "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    assert set(mirror.requests) == UPSTREAM_PATHS and len(mirror.requests) == 3
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)  # no temporary file left behind
    for name in FILES:
        assert (cache / name).read_bytes() == (source_set / name).read_bytes()
    assert f"fetched {', '.join(FILES)}" in result.stdout


def test_a_second_run_downloads_nothing_and_a_repair_only_what_is_wrong(mirror, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert fetch_crds.main(["--base-url", mirror.base_url, "--cache-dir", str(cache)]) == 0
    mirror.requests.clear()
    assert fetch_crds.main(["--base-url", mirror.base_url, "--cache-dir", str(cache)]) == 0
    assert mirror.requests == []
    assert "already up to date" in capsys.readouterr().out

    corrupt(cache / "karpenter.sh_nodepools.yaml")
    (cache / "ray.io_rayservices.yaml").unlink()
    (cache / "karpenter.sh_nodepools-v0.yaml").write_text("kind: Old\n")  # another release's file
    assert fetch_crds.main(["--base-url", mirror.base_url, "--cache-dir", str(cache)]) == 0
    assert sorted(Path(p).name for p in mirror.requests) == ["karpenter.sh_nodepools.yaml", "ray.io_rayservices.yaml"]
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)
    assert fetch_crds.problems(cache, fetch_crds.pinned()) == []


def test_a_file_with_another_sum_is_refused_in_one_line(mirror, tmp_path):
    corrupt(mirror.path_of("karpenter.sh_nodepools.yaml"))
    cache = tmp_path / "cache"
    line = one_error_line(run_script("--base-url", mirror.base_url, "--cache-dir", str(cache)))
    url = f"{mirror.base_url}/aws/karpenter-provider-aws/v{KARPENTER_VERSION}/pkg/apis/crds/karpenter.sh_nodepools.yaml"
    assert line.startswith(f"error: karpenter.sh_nodepools.yaml from {url} has sha256 "), line
    assert f"scripts/crds.sha256 pins for karpenter {KARPENTER_VERSION}, so it was not written" in line
    assert "CRDS_BASE_URL" in line
    assert not (cache / "karpenter.sh_nodepools.yaml").exists()


def test_an_unreachable_server_is_one_line_with_the_url_and_the_fix(tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(run_script("--base-url", base, "--cache-dir", str(tmp_path / "cache")))
    url = f"{base}/ray-project/kuberay/v{KUBERAY_VERSION}/ray-operator/config/crd/bases/ray.io_rayservices.yaml"
    assert line.startswith(f"error: cannot download ray.io_rayservices.yaml from {url}: "), line
    assert line.endswith("check the network (or set CRDS_BASE_URL to a mirror of https://raw.githubusercontent.com), "
                         "then run `make crds` again"), line


def test_a_missing_file_on_the_server_is_one_line(mirror, tmp_path):
    mirror.path_of("karpenter.k8s.aws_ec2nodeclasses.yaml").unlink()
    line = one_error_line(run_script("--base-url", mirror.base_url, "--cache-dir", str(tmp_path / "cache")))
    assert line.startswith("error: cannot download karpenter.k8s.aws_ec2nodeclasses.yaml from ") and "HTTP 404" in line


def test_the_base_url_can_come_from_the_environment(mirror, tmp_path):
    result = run_script("--cache-dir", str(tmp_path / "cache"), env_extra={"CRDS_BASE_URL": mirror.base_url})
    assert result.returncode == 0, result.stderr
    assert set(mirror.requests) == UPSTREAM_PATHS


def test_a_version_bump_without_sums_says_what_to_do(mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch_crds, "versions", lambda: {"kuberay": KUBERAY_VERSION, "karpenter": "9.9.9"})
    assert fetch_crds.main(["--base-url", mirror.base_url, "--cache-dir", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("error: scripts/crds.sha256 pins no sha256 for karpenter 9.9.9 (karpenter.sh_nodepools.yaml), "
                   "karpenter 9.9.9 (karpenter.k8s.aws_ec2nodeclasses.yaml), the version config/versions.py asks "
                   "for: add the new release's lines to it (`python3 scripts/fetch_crds.py --print-sums` prints "
                   "them; check them against the upstream tag), then run `make crds`")
    assert mirror.requests == [] and not (tmp_path / "cache").exists()


def test_print_sums_reproduces_the_committed_sums(mirror, capsys):
    """The sums in scripts/crds.sha256 are those of the files the suite validates against."""
    assert fetch_crds.main(["--print-sums", "--base-url", mirror.base_url]) == 0
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    committed = [line.split() for line in fetch_crds.SUMS_FILE.read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    assert printed == committed
    assert [(p[0], p[1]) for p in printed] == [("kuberay", KUBERAY_VERSION)] + [("karpenter", KARPENTER_VERSION)] * 2


def test_the_cache_is_inside_the_repository_and_ignored_by_git():
    assert fetch_crds.CACHE_DIR == REPO / ".cache" / "crds"
    probe = fetch_crds.CACHE_DIR.relative_to(REPO) / "ray.io_rayservices.yaml"
    assert subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=REPO).returncode == 0


# --- `make crds` / --if-needed: no network when a valid set is there -----------------------------

def test_make_test_runs_make_crds_first():
    makefile = (REPO / "Makefile").read_text()
    (test_rule,) = re.findall(r"^test:(.*)$", makefile, re.M)
    assert "crds" in test_rule.split()
    assert re.search(r"^crds:\n\t\$\(PY\) scripts/fetch_crds\.py --if-needed$", makefile, re.M)
    assert re.search(r"^\.PHONY:.* crds ", makefile, re.M) and "\n## crds: " in makefile


def test_make_crds_does_nothing_offline_when_crds_dir_holds_a_valid_set(source_set, tmp_path):
    valid = copy_set(source_set, tmp_path / "valid")
    closed = f"http://127.0.0.1:{free_port()}"  # any download would fail
    env = {**os.environ, "CRDS_DIR": str(valid), "CRDS_BASE_URL": closed}
    result = subprocess.run(["make", "--no-print-directory", "-s", "crds"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"crds: {valid} holds the pinned CRDs (karpenter {KARPENTER_VERSION}, "
                                     f"kuberay {KUBERAY_VERSION}); nothing to fetch")


def test_if_needed_with_a_stale_crds_dir_fails_instead_of_fetching(source_set, tmp_path):
    bad = copy_set(source_set, tmp_path / "bad")
    corrupt(bad / "ray.io_rayservices.yaml")
    line = one_error_line(run_script("--if-needed", "--base-url", f"http://127.0.0.1:{free_port()}",
                                     env_extra={"CRDS_DIR": str(bad)}))
    assert f"{bad}/ray.io_rayservices.yaml has sha256 " in line
    assert line.endswith("fix the folder CRDS_DIR points at, or unset CRDS_DIR and run `make crds`"), line


def test_if_needed_fetches_into_the_cache_when_the_set_found_is_stale(isolated, source_set, mirror, capsys):
    cache, shared = isolated
    copy_set(source_set, shared)
    corrupt(shared / "karpenter.sh_nodepools.yaml")  # e.g. ../shared older than config/versions.py
    assert fetch_crds.main(["--if-needed", "--base-url", mirror.base_url]) == 0
    assert set(mirror.requests) == UPSTREAM_PATHS
    assert crd_validator.crds_dir() == cache  # the cache now comes first, and is valid
    mirror.requests.clear()
    assert fetch_crds.main(["--if-needed", "--base-url", mirror.base_url]) == 0
    assert mirror.requests == [] and "nothing to fetch" in capsys.readouterr().out


# --- the validator's lookup -------------------------------------------------------------------------

def test_lookup_order_crds_dir_then_the_cache_then_shared(isolated, source_set, tmp_path, monkeypatch):
    cache, shared = isolated
    explicit = copy_set(source_set, tmp_path / "explicit")
    copy_set(source_set, cache)
    copy_set(source_set, shared)
    monkeypatch.setenv("CRDS_DIR", str(explicit))
    assert crd_validator.crds_dir() == explicit
    monkeypatch.delenv("CRDS_DIR")
    assert crd_validator.crds_dir() == cache
    shutil.rmtree(cache)
    assert crd_validator.crds_dir() == shared


def test_a_missing_set_names_the_command_that_fixes_it(isolated):
    cache, shared = isolated
    cache.mkdir()  # an empty cache folder is no set either
    with pytest.raises(CRDValidationError) as exc:
        crd_validator.validate_custom_resource({"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                                                "metadata": {"name": "x"}})
    assert str(exc.value) == (f"no CRDs to validate against ($CRDS_DIR unset; no *.yaml in {cache} or {shared}): "
                              "run `make crds` (downloads the pinned upstream CRDs into .cache/crds/)")


def test_a_stale_file_in_the_set_found_fails_naming_it(isolated, source_set):
    cache, shared = isolated
    copy_set(source_set, shared)  # valid, but the cache comes first: a stale cache is not skipped
    copy_set(source_set, cache)
    corrupt(cache / "karpenter.k8s.aws_ec2nodeclasses.yaml")
    with pytest.raises(CRDValidationError) as exc:
        crd_validator.crds_dir()
    message = str(exc.value)
    assert message.startswith(f"{cache}/karpenter.k8s.aws_ec2nodeclasses.yaml has sha256 "), message
    assert message.endswith(f"not the one scripts/crds.sha256 pins for karpenter {KARPENTER_VERSION} "
                            "(a stale or edited file): run `make crds`"), message


def test_a_set_lacking_a_file_fails_naming_it(isolated, source_set):
    _, shared = isolated
    copy_set(source_set, shared, files=FILES[:2])
    with pytest.raises(CRDValidationError) as exc:
        crd_validator.crds_dir()
    assert str(exc.value) == (f"{shared}/karpenter.k8s.aws_ec2nodeclasses.yaml is missing "
                              f"(karpenter {KARPENTER_VERSION}): run `make crds`")

#!/usr/bin/env python3
"""Download the upstream CRDs the tests validate against (`make crds`), at the versions config/versions.py pins.

    python3 scripts/fetch_crds.py [--if-needed] [--base-url URL] [--cache-dir DIR] [--print-sums]

The tests (tests/support/crd_validator.py) read the first CRD set found of:
  1. $CRDS_DIR,
  2. .cache/crds/ in the repository (what this script fills; git ignores it),
  3. ../shared/crds beside the repository,
and every file of it must match its sha256 in scripts/crds.sha256, the same check this script applies
to what it downloads. Files are written atomically, and files whose sums already match are not
downloaded again. --if-needed (what `make crds` runs) does nothing when the set the tests would read
is already valid, so `make test` needs no network where one is. --base-url (or $CRDS_BASE_URL) replaces
https://raw.githubusercontent.com, e.g. with a mirror laid out the same way. --print-sums downloads the
files without checking them and prints the lines to add to scripts/crds.sha256 after a version bump.

Standard library only. Any failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python3 scripts/fetch_crds.py`
    sys.path.insert(0, str(REPO))

from config.versions import KARPENTER_VERSION, KUBERAY_VERSION  # noqa: E402

SUMS_FILE = Path(__file__).resolve().with_name("crds.sha256")
CACHE_DIR = REPO / ".cache" / "crds"
SHARED_DIR = REPO.parent / "shared" / "crds"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
BASE_URL_ENV = "CRDS_BASE_URL"
DIR_ENV = "CRDS_DIR"
TIMEOUT_S = 60

# file, project (its version comes from config/versions.py), GitHub repository, folder at the release tag v<version>
UPSTREAM = (
    ("ray.io_rayservices.yaml", "kuberay", "ray-project/kuberay", "ray-operator/config/crd/bases"),
    ("karpenter.sh_nodepools.yaml", "karpenter", "aws/karpenter-provider-aws", "pkg/apis/crds"),
    ("karpenter.k8s.aws_ec2nodeclasses.yaml", "karpenter", "aws/karpenter-provider-aws", "pkg/apis/crds"),
)


def versions() -> dict[str, str]:
    return {"kuberay": KUBERAY_VERSION, "karpenter": KARPENTER_VERSION}


class CrdsError(Exception):
    """A problem with the CRD set; its message is the one line shown to the user."""


@dataclass(frozen=True)
class Crd:
    file: str
    project: str
    version: str
    repo: str
    folder: str
    sha256: str | None

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.repo}/v{self.version}/{self.folder}/{self.file}"

    def sums_line(self, sha256: str) -> str:
        return f"{self.project:<10} {self.version:<7} {self.file:<39} {sha256}"


def read_sums(path: Path | None = None) -> dict[tuple[str, str, str], str]:
    """(project, version, file) -> sha256, from scripts/crds.sha256."""
    path = path or SUMS_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise CrdsError(f"cannot read the CRD sums {path}: {exc.strerror or exc}") from None
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4 or len(parts[3]) != 64:
            raise CrdsError(f"{path}:{number}: expected `<project> <version> <file> <sha256>`, got {line.strip()!r}")
        sums[(parts[0], parts[1], parts[2])] = parts[3].lower()
    return sums


def pinned(pins: dict[str, str] | None = None, *, require_sums: bool = True) -> list[Crd]:
    """The CRDs at the pinned versions, each with its sha256 (CrdsError if the sums file lacks one)."""
    pins = pins or versions()
    sums = read_sums()
    crds = [Crd(file, project, pins[project], repo, folder, sums.get((project, pins[project], file)))
            for file, project, repo, folder in UPSTREAM]
    missing = [c for c in crds if c.sha256 is None]
    if missing and require_sums:
        names = ", ".join(f"{c.project} {c.version} ({c.file})" for c in missing)
        raise CrdsError(
            f"{_rel(SUMS_FILE)} pins no sha256 for {names}, the version config/versions.py asks for: add the "
            f"new release's lines to it (`python3 scripts/fetch_crds.py --print-sums` prints them; check "
            f"them against the upstream tag), then run `make crds`")
    return crds


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def problems(directory: Path, crds: list[Crd]) -> list[str]:
    """What is wrong with the set in `directory` (empty: every pinned file is there with its sum)."""
    out = []
    for crd in crds:
        path = directory / crd.file
        if not path.is_file():
            out.append(f"{path} is missing ({crd.project} {crd.version})")
        elif (got := sha256_of(path)) != crd.sha256:
            out.append(f"{path} has sha256 {got[:12]}..., not the one {_rel(SUMS_FILE)} pins for "
                       f"{crd.project} {crd.version} (a stale or edited file)")
    return out


def _holds_yaml(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("*.yaml"))


def locate(env: dict[str, str] | None = None) -> tuple[str, Path | None]:
    """(source, directory) of the set the tests read: $CRDS_DIR if set, else the first of the cache and
    ../shared/crds that holds *.yaml, else ("none", None)."""
    env = os.environ if env is None else env
    if env.get(DIR_ENV):
        return DIR_ENV, Path(env[DIR_ENV])
    for source, directory in (("cache", CACHE_DIR), ("shared", SHARED_DIR)):
        if _holds_yaml(directory):
            return source, directory
    return "none", None


def find_valid_set(env: dict[str, str] | None = None) -> Path:
    """The directory of the CRD set the tests read; CrdsError (saying how to fix it) if none is valid."""
    crds = pinned()
    source, directory = locate(env)
    if source == DIR_ENV:
        if not _holds_yaml(directory):
            raise CrdsError(f"{DIR_ENV}={directory} is missing or holds no *.yaml: point {DIR_ENV} at a folder "
                            f"of the pinned CRDs, or unset it and run `make crds`")
        fix = f"fix the folder {DIR_ENV} points at, or unset {DIR_ENV} and run `make crds`"
    elif source == "none":
        raise CrdsError(f"no CRDs to validate against (${DIR_ENV} unset; no *.yaml in {CACHE_DIR} or "
                        f"{SHARED_DIR}): run `make crds` (downloads the pinned upstream CRDs into .cache/crds/)")
    else:
        fix = "run `make crds`"
    wrong = problems(directory, crds)
    if wrong:
        raise CrdsError(f"{'; '.join(wrong)}: {fix}")
    return directory


def _download(file: str, url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        reason = str(exc.reason)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
    raise CrdsError(f"cannot download {file} from {url}: {reason}; check the network (or set {BASE_URL_ENV} to a mirror "
                    f"of {DEFAULT_BASE_URL}), then run `make crds` again")


def fetch(crds: list[Crd], cache_dir: Path, base_url: str) -> list[str]:
    """Make `cache_dir` hold exactly the pinned set; return the files downloaded. Every download is
    checked before it is written (atomically: a temporary file renamed over the old one)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    fetched = []
    for crd in crds:
        dest = cache_dir / crd.file
        if dest.is_file() and sha256_of(dest) == crd.sha256:
            continue
        url = crd.url(base_url)
        data = _download(crd.file, url)
        got = hashlib.sha256(data).hexdigest()
        if got != crd.sha256:
            raise CrdsError(
                f"{crd.file} from {url} has sha256 {got}, not the {crd.sha256} {_rel(SUMS_FILE)} pins for "
                f"{crd.project} {crd.version}, so it was not written: if {BASE_URL_ENV} or --base-url points at a "
                f"mirror, make it serve the v{crd.version} files, otherwise check the upstream tag and the sums")
        fd, tmp = tempfile.mkstemp(prefix=f".{crd.file}.", dir=cache_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fetched.append(crd.file)
    # The validator reads every *.yaml here: drop files of other releases (a renamed CRD after a bump).
    keep = {c.file for c in crds}
    for stale in cache_dir.glob("*.yaml"):
        if stale.name not in keep:
            stale.unlink()
    return fetched


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _describe(crds: list[Crd]) -> str:
    return ", ".join(sorted({f"{c.project} {c.version}" for c in crds}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--if-needed", action="store_true",
                        help="do nothing when the set the tests read ($CRDS_DIR, .cache/crds, ../shared/crds) is valid")
    parser.add_argument("--base-url", default=os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
                        help=f"where <owner>/<repo>/<tag>/<path> is served (default ${BASE_URL_ENV}, else {DEFAULT_BASE_URL})")
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default {_rel(CACHE_DIR)}")
    parser.add_argument("--print-sums", action="store_true",
                        help="download without checking and print the scripts/crds.sha256 lines (after a version bump)")
    args = parser.parse_args(argv)
    try:
        if args.print_sums:
            for crd in pinned(require_sums=False):
                print(crd.sums_line(hashlib.sha256(_download(crd.file, crd.url(args.base_url))).hexdigest()))
            return 0
        crds = pinned()
        if args.if_needed:
            source, _ = locate()
            try:
                directory = find_valid_set()
            except CrdsError:
                if source == DIR_ENV:
                    raise  # downloading into the cache would not change what the tests read
            else:
                print(f"crds: {_rel(directory)} holds the pinned CRDs ({_describe(crds)}); nothing to fetch")
                return 0
        cache_dir = args.cache_dir or CACHE_DIR
        fetched = fetch(crds, cache_dir, args.base_url)
        what = f"fetched {', '.join(fetched)}" if fetched else "already up to date"
        print(f"crds: {_rel(cache_dir)} holds the pinned CRDs ({_describe(crds)}); {what}")
        return 0
    except CrdsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Regenerate serving/requirements-image.lock: every package the image's pip install adds or changes
above the Neuron vLLM DLC, pinned exactly, with the sha256 of every wheel pip may pick for it.

    .venv/bin/python scripts/lock_image_requirements.py [--python PYTHON3.12] [--work DIR] [--check]

Run it after editing serving/requirements-image.txt or bumping the DLC (config/versions.py
NEURON_VLLM_IMAGE and tests/serving/data/dlc_base/). It needs PyPI; the tests do not: they check the
lock's header digest against the inputs (`--check` does the same) and the lock's invariants.

How:
  1. The DLC's package set D: tests/serving/data/dlc_base/pip_freeze.txt when recorded (from a pulled
     image: `docker run --rm --entrypoint /opt/conda/bin/python IMAGE -m pip list --format=freeze`),
     else the model in facts.json packages.dlc_model (the DLC Dockerfile's PyPI installs and vLLM
     0.16.0's common requirements) resolved on PyPI.
  2. requirements-image.txt resolved together with the DLC model's requirements, with D as
     constraints, except the packages requirements-image.txt pins itself (our deliberate overrides):
     so what the DLC has stays at the DLC's version and only the rest is resolved. A conflict fails
     here, naming the package; pin it in requirements-image.txt (an override) with a reason.
  3. The lock = the closure of requirements-image.txt in that resolution: `new` packages (not in D)
     and `override`s (pinned in requirements-image.txt, in D) are installed, exact and hashed; the rest
     (`# kept:`, in D) are not installed at all, so the DLC's own copies stay whatever their real
     version: a modelled D can be wrong about a version, and forcing a guess over the DLC's copy (say
     numpy, which the Neuron packages may pin) could break it. `pip check` in the build proves the kept
     copies satisfy the new packages; if it fails, record pip_freeze.txt and re-lock.
Resolution runs pip's own resolver (`pip install --dry-run --ignore-installed --report`) for the DLC's
Python (facts.json python.version, linux x86_64, wheels only) from a throwaway venv of a Python of that
minor version, because pip evaluates environment markers against the interpreter that runs it, not
against --python-version. The machine's pip configuration (extra indexes, caps) is ignored: the lock
is resolved from PyPI alone. Hashes come from PyPI's simple API (PEP 691 JSON), as pip-compile's
--generate-hashes does.

Why a hashed lock installed with --no-deps rather than a constraints file: pip's hash-checking mode
needs a hash on every requirement it installs, and hashes in a constraints file do not count for the
top-level requirements (pip 26 refuses `-r requirements-image.txt -c <hashed constraints>
--require-hashes`). So serving/Dockerfile installs this file alone, `--require-hashes --no-deps`, and
`pip check` proves the result consistent with everything the DLC already has.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "serving" / "requirements-image.txt"
LOCK = REPO / "serving" / "requirements-image.lock"
DLC_BASE = REPO / "tests" / "serving" / "data" / "dlc_base"
FACTS = DLC_BASE / "facts.json"
DLC_FREEZE = DLC_BASE / "pip_freeze.txt"
INDEX = "https://pypi.org/simple"
# Bump when the resolution or the format changes, so the digest marks every old lock stale.
LOCK_FORMAT = 2
# The DLC is Ubuntu 24.04 (glibc 2.39): every manylinux tag up to 2_39 installs there, the legacy aliases
# too (py-spy ships only manylinux1 wheels). Highest first, the order the DLC's own pip prefers them in
# (packaging.tags.platform_tags on glibc 2.39).
PLATFORMS = [*(f"manylinux_2_{m}_x86_64" for m in range(39, 4, -1)),
             "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
KINDS = ("new", "dlc", "override")


class LockError(RuntimeError):
    """The lock cannot be made; the message says which package and what to change."""


def canonical(name: str) -> str:
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(text: str) -> dict[str, str]:
    """`name[extras]==version` lines (comments, blank lines, options and --hash continuations skipped)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.\-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)(?:\s*;.*)?", line)
        if not match:
            raise LockError(f"not an exact pin: {line!r} (every line must be name==version)")
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def top_level(requirements_text: str) -> list[str]:
    """requirements-image.txt's requirement lines, as written (extras kept)."""
    return [ln.split("#", 1)[0].strip() for ln in requirements_text.splitlines() if ln.split("#", 1)[0].strip()]


def dlc_model_requirements(facts: dict) -> list[str]:
    model = facts["packages"]["dlc_model"]
    return [*model["dlc_installs"], *model["vllm_common_requirements"]]


def inputs_digest(requirements_text: str, facts: dict, freeze_text: str | None) -> str:
    """sha256 over everything the lock is made from; the lock's header records it (staleness check)."""
    inputs = {
        "format": LOCK_FORMAT,
        "requirements": top_level(requirements_text),  # the requirement lines: comments do not change the lock
        "python": facts["python"]["version"],
        "platforms": PLATFORMS,
        "pinned_by_the_dlc": facts["packages"]["pinned_by_the_dlc"],
        "dlc_model": facts["packages"]["dlc_model"],
        "dlc_freeze": freeze_text,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def dlc_constraints(dlc: dict[str, str], overrides: set[str], not_on_pypi: set[str]) -> list[str]:
    """D as constraint lines, minus our overrides and what PyPI cannot resolve (local versions too)."""
    return [f"{name}=={version}" for name, version in sorted(dlc.items())
            if name not in overrides and name not in not_on_pypi and "+" not in version]


def closure(installed: dict[str, dict], roots: list[str], environment: dict[str, str]) -> set[str]:
    """Names reachable from `roots` through Requires-Dist in a pip report (markers evaluated, extras followed).

    `installed` maps canonical name -> the report entry's metadata (name, version, requires_dist)."""
    from packaging.requirements import Requirement

    seen: set[tuple[str, str]] = set()
    todo = [(Requirement(r), "") for r in roots]
    while todo:
        req, from_extra = todo.pop()
        if req.marker and not req.marker.evaluate({**environment, "extra": from_extra}):
            continue
        name = canonical(req.name)
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            if name not in installed:
                raise LockError(f"{name} is required but not in the resolution (report incomplete?)")
            todo += [(Requirement(d), extra) for d in installed[name].get("requires_dist") or []]
    return {name for name, _ in seen}


def classify(locked: dict[str, str], dlc: dict[str, str], ours: set[str]) -> dict[str, str]:
    """new: not in the DLC (installed); override: requirements-image.txt pins a package the DLC has
    (installed, whatever the DLC's version); dlc: the DLC has it and nothing of ours pins it (kept, not
    installed: the DLC's own copy stays, and `pip check` proves it satisfies what needs it)."""
    return {name: "new" if name not in dlc else "override" if name in ours else "dlc" for name in locked}


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    kind: str  # one of KINDS
    hashes: tuple[str, ...]
    dlc_version: str | None = None


NOTES = {"new": "new: not in the DLC", "override": "override: pinned in requirements-image.txt; the DLC has {}"}


def render(entries: list[Entry], digest: str, dlc_source: str) -> str:
    counts = {k: sum(e.kind == k for e in entries) for k in KINDS}
    lines = [
        "# GENERATED by scripts/lock_image_requirements.py: do not edit. Edit serving/requirements-image.txt",
        "# (or tests/serving/data/dlc_base/) and re-run the script.",
        f"# inputs-sha256: {digest}",
        f"# DLC package set: {dlc_source}",
        "# Every package `pip install -r serving/requirements-image.txt` adds or changes above the DLC, exact,",
        "# with the sha256 of every wheel of that version the DLC's Python (cp312, manylinux x86_64) may take.",
        "# serving/Dockerfile installs this file alone with --require-hashes --no-deps, then runs pip check.",
        "# `# kept:` lines are dependencies the DLC already has: not installed, so the DLC's copy stays.",
        f"# packages: {len(entries)} (installed: new above the DLC {counts['new']}, overriding the DLC's"
        f" {counts['override']}; kept at the DLC's version: {counts['dlc']})",
    ]
    for e in sorted(entries, key=lambda e: e.name):
        if e.kind == "dlc":
            lines.append(f"# kept: {e.name}=={e.version}")
            continue
        if not e.hashes:
            raise LockError(f"{e.name}: no hashes")
        lines.append(f"{e.name}=={e.version} \\")
        lines += [f"    --hash=sha256:{h} \\" for h in e.hashes[:-1]] + [f"    --hash=sha256:{e.hashes[-1]}"]
        lines.append("    # " + NOTES[e.kind].format(e.dlc_version))
    return "\n".join(lines) + "\n"


def parse_lock(text: str) -> tuple[str | None, list[Entry]]:
    """The header digest and the entries of a rendered lock (the inverse of render)."""
    digest = re.search(r"^# inputs-sha256: ([0-9a-f]{64})$", text, re.M)
    entries = [Entry(n, v, "dlc", ()) for n, v in re.findall(r"^# kept: ([a-z0-9\-]+)==(\S+)$", text, re.M)]
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([a-z0-9\-]+)==(\S+) \\", block)
        if not head:
            continue
        note = re.search(r"^    # (new|override)\b(?:.* has (\S+))?", block, re.M)
        if not note:
            raise LockError(f"{head.group(1)}: no new/override note in the lock")
        entries.append(Entry(head.group(1), head.group(2), note.group(1),
                             tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", block)), note.group(2)))
    return (digest.group(1) if digest else None), entries


# --- the parts that need PyPI and a Python 3.12 -------------------------------------------------------

def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # ignore the machine's pip.conf (extra indexes, constraint caps)
    return env


def find_python(minor: str, explicit: str | None) -> str:
    candidates = [explicit] if explicit else [f"python{minor}", *sorted(
        str(p) for p in Path.home().glob(f".pyenv/versions/{minor}.*/bin/python"))]
    for candidate in candidates:
        path = shutil.which(candidate) or (candidate if candidate and Path(candidate).is_file() else None)
        if not path:
            continue
        out = subprocess.run([path, "-c", "import sys, platform; print('%d.%d' % sys.version_info[:2], platform.machine())"],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split() == [minor, "x86_64"]:
            return path
    raise LockError(f"need a Python {minor} on x86_64 (the DLC's; pip evaluates markers with the interpreter "
                    f"that runs it): pass --python /path/to/python{minor}")


def resolve(python: str, requirements: list[str], constraints: list[str], work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    inputs = ("\n".join(requirements) + "\n", "\n".join(constraints) + "\n")
    report = work / "report.json"
    # --work DIR keeps the reports: a re-run with the same inputs (e.g. after a PyPI hiccup while
    # hashing) skips the resolution, which takes minutes (torch's and vLLM's whole tree).
    if report.exists() and ((work / "requirements.txt").read_text(), (work / "constraints.txt").read_text()) == inputs:
        return json.loads(report.read_text())
    (work / "requirements.txt").write_text(inputs[0])
    (work / "constraints.txt").write_text(inputs[1])
    report.unlink(missing_ok=True)
    cmd = [python, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--index-url", INDEX,
           "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), "--only-binary=:all:",
           "--target", str(work / "target"), *[a for p in PLATFORMS for a in ("--platform", p)],
           "-r", str(work / "requirements.txt"), "-c", str(work / "constraints.txt")]
    result = subprocess.run(cmd, capture_output=True, text=True, env=_pip_env(), timeout=1800)
    if result.returncode:
        raise LockError("pip could not resolve (a conflict between requirements-image.txt and the DLC's "
                        "packages names the package below; pin it in requirements-image.txt as an override "
                        "with a reason):\n" + result.stderr[-4000:])
    return json.loads(report.read_text())


def wheel_hashes(name: str, version: str, python_tag: str) -> list[str]:
    """sha256 of every wheel of name==version that installs on the DLC's Python (PEP 691 simple API)."""
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import InvalidWheelFilename, canonicalize_version, parse_wheel_filename

    major, minor = (int(x) for x in python_tag.split("."))
    supported = {*cpython_tags((major, minor), platforms=PLATFORMS), *compatible_tags((major, minor), platforms=PLATFORMS)}
    request = urllib.request.Request(f"{INDEX}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    hashes = []
    for f in files:
        if not f["filename"].endswith(".whl") or f.get("yanked"):
            continue
        try:
            _, wheel_version, _, tags = parse_wheel_filename(f["filename"])
        except InvalidWheelFilename:  # ancient uploads (e.g. pydantic 0.18's `py36+` tag): never ours
            continue
        if canonicalize_version(wheel_version) == canonicalize_version(version) and set(tags) & supported:
            hashes.append(f["hashes"]["sha256"])
    if not hashes:
        raise LockError(f"{name}=={version}: PyPI lists no wheel for cp{major}{minor} manylinux x86_64")
    return sorted(hashes)


def _report_versions(report: dict) -> dict[str, dict]:
    return {canonical(i["metadata"]["name"]): i for i in report["install"]}


def build(python: str, work: Path) -> str:
    facts = json.loads(FACTS.read_text())
    requirements_text = REQUIREMENTS.read_text()
    freeze_text = DLC_FREEZE.read_text() if DLC_FREEZE.exists() else None
    not_on_pypi = {canonical(n) for n in facts["packages"]["dlc_model"]["not_on_pypi"]}
    ours = top_level(requirements_text)
    overrides = set(parse_pins(requirements_text))
    model = dlc_model_requirements(facts)

    if freeze_text is not None:
        dlc, dlc_source = parse_pins(freeze_text), "tests/serving/data/dlc_base/pip_freeze.txt (recorded from the image)"
    else:
        base = _report_versions(resolve(python, model, [], work / "dlc"))
        dlc = {n: i["metadata"]["version"] for n, i in base.items()}
        dlc_source = "modelled (facts.json packages.dlc_model resolved on PyPI; no pip_freeze.txt recorded)"
    exact = {canonical(n): v["version"] for n, v in facts["packages"]["pinned_by_the_dlc"].items()
             if re.fullmatch(r"[0-9][0-9A-Za-z.+!]*", v["version"])}
    for name, version in exact.items():  # the DLC's own pins beat the model's guess
        dlc[name] = version

    joint = resolve(python, [*ours, *model], dlc_constraints(dlc, overrides, not_on_pypi), work / "joint")
    installed = _report_versions(joint)
    names = closure({n: i["metadata"] for n, i in installed.items()}, ours, joint["environment"])
    locked = {n: installed[n]["metadata"]["version"] for n in names}
    kinds = classify(locked, dlc, overrides)
    entries = []
    for name in sorted(locked):
        if kinds[name] == "dlc":
            entries.append(Entry(name, locked[name], "dlc", ()))
            continue
        hashes = wheel_hashes(name, locked[name], facts["python"]["version"].rsplit(".", 1)[0])
        picked = (installed[name].get("download_info", {}).get("archive_info", {}).get("hashes") or {}).get("sha256")
        if picked and picked not in hashes:
            raise LockError(f"{name}=={locked[name]}: the wheel pip picked ({picked}) is not among PyPI's hashes")
        entries.append(Entry(name, locked[name], kinds[name], tuple(hashes), dlc.get(name) if kinds[name] == "override" else None))
    for entry in entries:
        if entry.name in exact and entry.version != exact[entry.name]:
            raise LockError(f"{entry.name}: the lock has {entry.version}, the DLC pins {exact[entry.name]}")
    return render(entries, inputs_digest(requirements_text, facts, freeze_text), dlc_source)


def current_digest() -> str:
    facts = json.loads(FACTS.read_text())
    freeze_text = DLC_FREEZE.read_text() if DLC_FREEZE.exists() else None
    return inputs_digest(REQUIREMENTS.read_text(), facts, freeze_text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="a Python of the DLC's minor version (default: python3.X on PATH or pyenv)")
    parser.add_argument("--check", action="store_true", help="offline: exit 1 if the lock is stale")
    parser.add_argument("--work", type=Path, help="keep pip's reports here and reuse them when the inputs match")
    args = parser.parse_args(argv)
    try:
        if args.check:
            recorded, _ = parse_lock(LOCK.read_text()) if LOCK.exists() else (None, [])
            if recorded != current_digest():
                raise LockError(f"{LOCK.relative_to(REPO)} is stale: re-run scripts/lock_image_requirements.py")
            return 0
        minor = json.loads(FACTS.read_text())["python"]["version"].rsplit(".", 1)[0]
        with tempfile.TemporaryDirectory(prefix="lock-image-") as tmp:
            venv = Path(tmp) / "venv"
            subprocess.run([find_python(minor, args.python), "-m", "venv", str(venv)], check=True)
            text = build(str(venv / "bin" / "python"), args.work or Path(tmp))
        LOCK.write_text(text)
        print(f"wrote {LOCK.relative_to(REPO)}: " + text.splitlines()[8].removeprefix("# "))
        return 0
    except LockError as error:
        print(f"lock_image_requirements: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

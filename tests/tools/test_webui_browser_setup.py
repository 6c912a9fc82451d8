"""Which Chromium the browser test gets, on Debian, Ubuntu (no snap) and macOS (issue 9, item 4):
tools/webui/install_browser.sh with stand-ins for uname, id, apt-cache, apt-get and the Playwright
Python (no network, nothing installed), and tools/webui/browser.py's lookup and its one-line hint."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from tools.webui.browser import ENV_OVERRIDE, BrowserMissing, find_chromium, install_hint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "webui" / "install_browser.sh"

DEBIAN_POLICY = "chromium:\n  Installed: (none)\n  Candidate: 156.0.8078.114-1~deb12u1\n"
DEBIAN_SHOW = "Package: chromium\nDepends: libasound2 (>= 1.0.17), libnss3, chromium-common\n"
# Ubuntu 22.04: no `chromium` package at all (its chromium-browser is the snap's transitional package).
UBUNTU_POLICY = ""
# A distribution whose `chromium` is only a wrapper around the snap.
SNAP_SHOW = "Package: chromium\nPre-Depends: debconf, snapd\n"


def _exe(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(tmp_path, *, system="Linux", uid=0, policy=DEBIAN_POLICY, show=DEBIAN_SHOW, apt=True, playwright=True):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    q = shlex.quote
    _exe(bin_dir / "uname", f"echo {system}\n")
    _exe(bin_dir / "id", f"echo {uid}\n")
    if apt:
        _exe(bin_dir / "apt-cache", f'case "$1" in policy) printf %s {q(policy)};; show) printf %s {q(show)};; esac\n')
        _exe(bin_dir / "apt-get", f'echo "apt-get $*" >> {q(str(log))}\n')
    python = tmp_path / "venv" / "bin" / "python"
    _exe(python, f'if [ "$1" = -c ]; then exit {0 if playwright else 1}; fi\necho "python $*" >> {q(str(log))}\n')
    env = {k: v for k, v in os.environ.items() if k != ENV_OVERRIDE}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", DEBIAN_CHROMIUM_PATH=str(tmp_path / "no-chromium"))
    if not apt:  # hide the machine's real apt-cache
        env["PATH"] = f"{bin_dir}:{_path_without('apt-cache', tmp_path)}"
    result = subprocess.run(["bash", str(SCRIPT), str(python)], env=env, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def _path_without(tool: str, tmp_path: Path) -> str:
    """A PATH with the coreutils the script needs but no `tool` (symlinks into a folder of our own)."""
    keep = tmp_path / "sysbin"
    keep.mkdir(exist_ok=True)
    for name in ("bash", "awk", "grep", "cat", "env", "printf"):
        for d in ("/usr/bin", "/bin"):
            if (Path(d) / name).exists() and not (keep / name).exists():
                (keep / name).symlink_to(Path(d) / name)
    assert not (keep / tool).exists()
    return str(keep)


def test_debian_installs_its_chromium_package(tmp_path):
    result, calls = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert any("install" in c and " chromium " in f"{c} " for c in calls), calls
    assert not [c for c in calls if "playwright" in c]


def test_ubuntu_without_a_chromium_package_gets_playwrights_with_its_libraries(tmp_path):
    result, calls = _run(tmp_path, policy=UBUNTU_POLICY, show="")
    assert result.returncode == 0, result.stderr
    assert calls == [f"python -m playwright install --with-deps chromium"], calls


def test_a_snap_only_chromium_package_does_not_count(tmp_path):
    result, calls = _run(tmp_path, show=SNAP_SHOW)
    assert result.returncode == 0, result.stderr
    assert calls == ["python -m playwright install --with-deps chromium"], calls


def test_macos_gets_playwrights_chromium_without_apt(tmp_path):
    result, calls = _run(tmp_path, system="Darwin", apt=False, uid=501)
    assert result.returncode == 0, result.stderr
    assert calls == ["python -m playwright install chromium"], calls


def test_without_root_it_prints_the_one_command(tmp_path):
    result, calls = _run(tmp_path, policy=UBUNTU_POLICY, uid=1000)
    assert result.returncode == 1 and calls == []
    (line,) = result.stderr.strip().splitlines()
    assert "run sudo" in line and "-m playwright install --with-deps chromium" in line


def test_without_playwright_it_says_to_run_make_setup(tmp_path):
    result, _ = _run(tmp_path, policy=UBUNTU_POLICY, playwright=False)
    assert result.returncode == 1 and "has no Playwright; run `make setup`" in result.stderr


def test_an_existing_debian_chromium_needs_nothing(tmp_path):
    chromium = tmp_path / "chromium"
    _exe(chromium, "exit 0\n")
    env = dict(os.environ, DEBIAN_CHROMIUM_PATH=str(chromium))
    env.pop(ENV_OVERRIDE, None)
    result = subprocess.run(["bash", str(SCRIPT), "/nonexistent/python"], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "using Debian's" in result.stdout


# --- the test's lookup ----------------------------------------------------------------------------------

def _binary(tmp_path: Path, name: str) -> str:
    _exe(tmp_path / name, "exit 0\n")
    return str(tmp_path / name)


def test_lookup_order_override_then_debian_then_playwright(tmp_path):
    debian, playwright, override = (_binary(tmp_path, n) for n in ("debian", "pw", "override"))
    assert find_chromium(playwright, environ={ENV_OVERRIDE: override}, debian_path=debian).source == ENV_OVERRIDE
    assert find_chromium(playwright, environ={}, debian_path=debian).path == debian
    found = find_chromium(playwright, environ={}, debian_path=str(tmp_path / "absent"))
    assert (found.path, found.source) == (playwright, "playwright")


def test_a_bad_override_is_named(tmp_path):
    with pytest.raises(BrowserMissing, match=f"^{ENV_OVERRIDE}=.*not an executable file"):
        find_chromium(None, environ={ENV_OVERRIDE: str(tmp_path / "missing")})


@pytest.mark.parametrize("platform,debian,command", [
    ("linux", True, "sudo apt-get install -y chromium fonts-liberation"),
    ("linux", False, "sudo .venv/bin/python -m playwright install --with-deps chromium"),
    ("darwin", False, ".venv/bin/python -m playwright install chromium"),
])
def test_nothing_found_is_one_line_with_the_install_command(tmp_path, platform, debian, command):
    with pytest.raises(BrowserMissing) as info:
        find_chromium(str(tmp_path / "no-pw"), environ={}, debian_path=str(tmp_path / "absent"),
                      platform=platform, debian=debian)
    message = str(info.value)
    assert "\n" not in message and message.endswith(f"install one with: {command} (or set {ENV_OVERRIDE})")
    assert install_hint(platform, debian=debian) == command

"""Which Chromium the Open WebUI browser test drives, and how to install one when none is there.

Looked for in this order: $CHROMIUM_EXECUTABLE (an override), Debian's /usr/bin/chromium (what
tools/webui/install_browser.sh installs where apt has a real package), Playwright's own Chromium (what
it installs elsewhere: Ubuntu, macOS). No browser is ever downloaded by the test itself.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_OVERRIDE = "CHROMIUM_EXECUTABLE"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT_PYTHON = ".venv/bin/python"


class BrowserMissing(RuntimeError):
    """No usable Chromium; the message is one line with the command that installs one."""


@dataclass(frozen=True)
class Browser:
    path: str
    source: str  # "CHROMIUM_EXECUTABLE" | "debian" | "playwright"


def _is_debian(os_release: Path = Path("/etc/os-release")) -> bool:
    try:
        text = os_release.read_text()
    except OSError:
        return False
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    ids = {fields.get("ID", "").strip('"'), *fields.get("ID_LIKE", "").strip('"').split()}
    return "debian" in ids and fields.get("ID", "").strip('"') != "ubuntu" and "ubuntu" not in ids


def install_hint(platform: str = sys.platform, *, debian: bool | None = None) -> str:
    """The one command that installs a Chromium the test can use, on this platform."""
    if platform == "darwin":
        return f"{PLAYWRIGHT_PYTHON} -m playwright install chromium"
    if platform.startswith("linux") and (_is_debian() if debian is None else debian):
        return "sudo apt-get install -y chromium fonts-liberation"
    return f"sudo {PLAYWRIGHT_PYTHON} -m playwright install --with-deps chromium"


def find_chromium(playwright_chromium: str | None, *, environ=os.environ, debian_path: str = DEBIAN_CHROMIUM,
                  platform: str = sys.platform, debian: bool | None = None) -> Browser:
    """The Chromium to launch. `playwright_chromium` is Playwright's `chromium.executable_path`."""
    override = environ.get(ENV_OVERRIDE)
    if override:
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise BrowserMissing(f"{ENV_OVERRIDE}={override} is not an executable file; unset it or point it "
                                 "at a Chromium binary")
        return Browser(override, ENV_OVERRIDE)
    if Path(debian_path).is_file() and os.access(debian_path, os.X_OK):
        return Browser(debian_path, "debian")
    if playwright_chromium and Path(playwright_chromium).is_file():
        return Browser(playwright_chromium, "playwright")
    raise BrowserMissing(f"no Chromium for the browser test (neither {debian_path} nor Playwright's); install one "
                         f"with: {install_hint(platform, debian=debian)} (or set {ENV_OVERRIDE})")


__all__ = ["Browser", "BrowserMissing", "find_chromium", "install_hint", "ENV_OVERRIDE"]

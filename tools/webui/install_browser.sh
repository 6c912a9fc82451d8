#!/usr/bin/env bash
# A Chromium for the Open WebUI browser test (tests/tools/test_webui_browser.py, which finds either).
# Usage: bash tools/webui/install_browser.sh [PLAYWRIGHT_PYTHON]   (default: .venv/bin/python)
#
#   1. Already there (Debian's /usr/bin/chromium, or $CHROMIUM_EXECUTABLE): nothing to do.
#   2. apt has a real `chromium` package (Debian): install it, as root. Ubuntu has none -- its
#      chromium-browser is a transitional package for the snap, and snaps need snapd, which containers
#      such as CodeBuild's lack -- so a package whose dependencies name snapd does not count.
#   3. Otherwise Playwright's own Chromium, for the Playwright of PLAYWRIGHT_PYTHON (the browser build
#      must match that Playwright): `python -m playwright install --with-deps chromium` on Linux (the
#      system libraries through apt, as root), `python -m playwright install chromium` on macOS.
# Without root or the Playwright Python, it prints the one command that would install it and exits 1.
set -euo pipefail
python="${1:-.venv/bin/python}"
debian_chromium="${DEBIAN_CHROMIUM_PATH:-/usr/bin/chromium}"  # where Debian's package puts it

if [ -n "${CHROMIUM_EXECUTABLE:-}" ] && [ -x "$CHROMIUM_EXECUTABLE" ]; then
  echo "install_browser.sh: using \$CHROMIUM_EXECUTABLE=$CHROMIUM_EXECUTABLE"; exit 0
fi
if [ -x "$debian_chromium" ]; then
  echo "install_browser.sh: using Debian's $debian_chromium"; exit 0
fi

is_root() { [ "$(id -u)" = 0 ]; }

apt_has_real_chromium() {
  command -v apt-cache >/dev/null 2>&1 || return 1
  local candidate
  candidate="$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ] || return 1
  ! apt-cache show chromium 2>/dev/null | grep -qE '^(Pre-)?Depends:.*\bsnapd\b'
}

if [ "$(uname -s)" = Linux ] && apt_has_real_chromium; then
  if ! is_root; then
    echo "install_browser.sh: the browser test needs Debian's chromium: run sudo apt-get install -y chromium fonts-liberation" >&2
    exit 1
  fi
  echo "install_browser.sh: installing Debian's chromium (apt)"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation
  exit 0
fi

case "$(uname -s)" in
  Darwin) cmd=("$python" -m playwright install chromium) ;;
  Linux)  cmd=("$python" -m playwright install --with-deps chromium) ;;
  *) echo "install_browser.sh: no Chromium recipe for $(uname -s); set CHROMIUM_EXECUTABLE to a Chromium binary" >&2; exit 1 ;;
esac
if ! "$python" -c "import playwright" >/dev/null 2>&1; then
  echo "install_browser.sh: $python has no Playwright; run \`make setup\`, then: ${cmd[*]}" >&2
  exit 1
fi
if [ "$(uname -s)" = Linux ] && ! is_root; then
  echo "install_browser.sh: Playwright's Chromium needs system libraries (apt, as root): run sudo ${cmd[*]}" >&2
  exit 1
fi
echo "install_browser.sh: installing Playwright's Chromium: ${cmd[*]}"
"${cmd[@]}"

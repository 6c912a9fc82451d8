"""Open WebUI on 127.0.0.1:8080 against local mode, offline: `make webui-local`.

Runs the PyPI open-webui pinned to the chart's image version (from .venv-webui) with the settings the
chart uses (config/webui.py COMMON_ENV), a fresh DATA_DIR per run (no stale accounts or chats), and
the OpenAI connection pointed at local mode (`make serve-local`) or --base-url.

Signup is off here too: Open WebUI creates the admin (config/webui.py ADMIN_EMAIL) at its first start
with a password generated into <data dir>/admin-password (mode 0600); the path is printed, the password
never is.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from config.names import LOCAL_SERVE_URL, LOCALHOST, WEBUI_PORT, local_url
from config.webui import COMMON_ENV, admin_identity_env
from tools.endpoint import local_key

LOCAL_MODE_BASE_URL = LOCAL_SERVE_URL
ADMIN_PASSWORD_FILE = "admin-password"  # in the data dir, beside Open WebUI's database

# Local-only additions to the shared settings. Why:
#  HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE: nothing on a laptop or in CI may reach a model hub.
#  builtin_tools off: Open WebUI otherwise sends its built-in tool schemas with every chat, over 2,000
#   tokens with the tiny local model's small vocabulary, more than local mode's context holds.
#  max_tokens 512: the tiny model never emits an end-of-turn token; bound each reply.
#  title/tags/follow-up generation off: each is a second, unbounded generation per message that the
#   tiny model cannot do usefully and that keeps a 2-core machine busy.
LOCAL_ONLY_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ENABLE_WEB_SEARCH": "false",
    "ENABLE_IMAGE_GENERATION": "false",
    "ENABLE_CODE_INTERPRETER": "false",
    "ENABLE_EVALUATION_ARENA_MODELS": "false",
    "DEFAULT_MODEL_METADATA": json.dumps({"capabilities": {"builtin_tools": False}}),
    "DEFAULT_MODEL_PARAMS": json.dumps({"max_tokens": 512}),
    "ENABLE_TITLE_GENERATION": "false",
    "ENABLE_TAGS_GENERATION": "false",
    "ENABLE_FOLLOW_UP_GENERATION": "false",
    "ENABLE_AUTOCOMPLETE_GENERATION": "false",
}


def admin_password(data_dir: Path) -> tuple[str, Path]:
    """The local admin's password and its file: generated once per data dir (0600, created exclusively),
    then reused, because Open WebUI only creates the admin while its database has no users."""
    path = data_dir / ADMIN_PASSWORD_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), path
    password = secrets.token_urlsafe(24)  # 32 ASCII characters: well under bcrypt's 72 bytes
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password, path


def webui_env(*, base_url: str, api_key: str, data_dir: Path, port: int, admin_password: str) -> dict[str, str]:
    """The environment Open WebUI runs with: COMMON_ENV + the admin bootstrap + this run's connection,
    data and port. Nothing OPENAI_*/WEBUI_* from the caller's shell leaks in."""
    if not admin_password:
        raise ValueError("admin_password: empty; Open WebUI would then make its first visitor the admin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "WEBUI_"))}
    env.update(COMMON_ENV)
    env.update(LOCAL_ONLY_ENV)
    env.update(admin_identity_env())
    env["WEBUI_ADMIN_PASSWORD"] = admin_password
    env.update({
        "OPENAI_API_BASE_URLS": base_url,
        "OPENAI_API_KEYS": api_key,
        "DATA_DIR": str(data_dir),
        "HOST": LOCALHOST,
        "PORT": str(port),
        # Signs this run's sessions; a fresh random value per run, never stored.
        "WEBUI_SECRET_KEY": secrets.token_urlsafe(32),
    })
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.webui.run_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=LOCAL_MODE_BASE_URL, help="OpenAI-compatible endpoint")
    parser.add_argument("--api-key", default=None,
                        help="key for the endpoint (default: $OPENAI_API_KEY, else local mode's generated key "
                             "for a 127.0.0.1 URL, else a placeholder)")
    parser.add_argument("--port", type=int, default=WEBUI_PORT, help=f"port on {LOCALHOST}")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep Open WebUI's data here (default: a fresh temporary folder, removed on exit)")
    args = parser.parse_args(argv)
    if not args.base_url.startswith(("http://", "https://")):
        parser.error(f"--base-url: {args.base_url!r} is not an http(s) URL; e.g. {LOCAL_MODE_BASE_URL}")
    if not 1 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a TCP port")
    # The same lookup as the client and the benchmark (tools/endpoint.py): local mode has a key by default.
    args.api_key = args.api_key or os.environ.get("OPENAI_API_KEY") or local_key(args.base_url)
    executable = Path(sys.executable).with_name("open-webui")
    if not executable.exists():
        print("error: open-webui is not installed in this Python; run `make setup-webui` and start it with "
              "`make webui-local`", file=sys.stderr)
        return 1

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="open-webui-data-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    existing_db = (data_dir / "webui.db").exists()
    password, password_file = admin_password(data_dir)
    env = webui_env(base_url=args.base_url, api_key=args.api_key, data_dir=data_dir, port=args.port,
                    admin_password=password)
    print(f"Open WebUI on {local_url(args.port)} -> {args.base_url} (data: {data_dir})", flush=True)
    print(f"Sign in as {env['WEBUI_ADMIN_EMAIL']}; the password is in {password_file} (signup is off)", flush=True)
    if existing_db:
        print(f"note: {data_dir} holds an earlier database; accounts it already has are kept, and the admin "
              f"(with the password in {password_file.name}) is only created if it has none", flush=True)
    # A child process (not exec) so the temporary data folder is removed however the run ends.
    proc = subprocess.Popen([str(executable), "serve", "--host", LOCALHOST, "--port", str(args.port)], env=env)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reaches Open WebUI too; wait for it to stop
                proc.terminate()
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

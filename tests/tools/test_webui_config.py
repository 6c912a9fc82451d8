"""Open WebUI for local mode: the same version and settings as the chart's."""

import re
import stat
from pathlib import Path

import pytest

from config.versions import OPEN_WEBUI_IMAGE, OPEN_WEBUI_VERSION
from config.webui import ADMIN_EMAIL, COMMON_ENV, oidc_env
from tools.webui.run_local import ADMIN_PASSWORD_FILE, LOCAL_MODE_BASE_URL, admin_password, main, webui_env

ROOT = Path(__file__).resolve().parents[2]


def test_pypi_open_webui_is_the_charts_image_version():
    pins = [line.strip() for line in (ROOT / "tools/webui/requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert pins == [f"open-webui=={OPEN_WEBUI_VERSION}"]
    assert OPEN_WEBUI_IMAGE.endswith(f":v{OPEN_WEBUI_VERSION}")


def _env(tmp_path, **kw):
    return webui_env(base_url=LOCAL_MODE_BASE_URL, api_key="EMPTY", data_dir=tmp_path, port=8080,
                     admin_password=kw.pop("admin_password", "a-local-password"), **kw)


def test_local_run_uses_the_shared_settings_and_local_mode(tmp_path):
    env = _env(tmp_path)
    for key, value in COMMON_ENV.items():
        assert env[key] == value, key
    assert env["OFFLINE_MODE"] == "true" and env["ENABLE_OLLAMA_API"] == "false" and env["OLLAMA_BASE_URL"]
    assert env["RAG_EMBEDDING_ENGINE"] == "openai"
    assert env["OPENAI_API_BASE_URLS"] == "http://127.0.0.1:8000/v1" and env["DATA_DIR"] == str(tmp_path)
    assert env["HOST"] == "127.0.0.1"
    # a fresh signing key per run, never a fixed one
    other = _env(tmp_path)
    assert env["WEBUI_SECRET_KEY"] != other["WEBUI_SECRET_KEY"] and len(env["WEBUI_SECRET_KEY"]) >= 32


def test_local_run_has_signup_off_and_bootstraps_the_admin(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBUI_ADMIN_PASSWORD", "from-the-shell")  # nothing WEBUI_* leaks in from the caller
    env = _env(tmp_path, admin_password="generated")
    assert env["ENABLE_SIGNUP"] == "false" and env["ENABLE_PERSISTENT_CONFIG"] == "false"
    assert env["WEBUI_ADMIN_EMAIL"] == ADMIN_EMAIL and env["WEBUI_ADMIN_PASSWORD"] == "generated"
    with pytest.raises(ValueError, match="admin_password"):
        _env(tmp_path, admin_password="")  # Open WebUI would make its first visitor the admin


def test_the_local_admin_password_is_generated_once_into_a_private_file(tmp_path):
    password, path = admin_password(tmp_path)
    assert path == tmp_path / ADMIN_PASSWORD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(password) >= 32 and len(password.encode()) <= 72 and re.fullmatch(r"[\w-]+", password)
    # The same data dir keeps its admin (created only while the database is empty): same password.
    assert admin_password(tmp_path) == (password, path)
    (tmp_path / "other").mkdir()
    assert admin_password(tmp_path / "other")[0] != password  # a fresh data dir: a fresh password


def test_make_webui_local_prints_where_the_password_is_never_the_password(tmp_path, capsys, monkeypatch):
    import subprocess

    import tools.webui.run_local as run_local

    started = {}

    class FakeOpenWebUI:
        def __init__(self, cmd, env):
            started.update(cmd=cmd, env=env)

        def wait(self):
            return 0

    bin_dir, data_dir = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    (bin_dir / "open-webui").touch()  # main() looks for it beside the running Python
    monkeypatch.setattr(run_local.sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(subprocess, "Popen", FakeOpenWebUI)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(run_local, "local_key", lambda url: f"local-mode-key-for {url}")
    assert main(["--data-dir", str(data_dir), "--port", "18101"]) == 0
    # No --api-key: local mode's generated key, looked up as the client and the benchmark do.
    assert started["env"]["OPENAI_API_KEYS"] == f"local-mode-key-for {LOCAL_MODE_BASE_URL}"
    out = capsys.readouterr().out
    password = (data_dir / ADMIN_PASSWORD_FILE).read_text().strip()
    assert str(data_dir / ADMIN_PASSWORD_FILE) in out and ADMIN_EMAIL in out
    assert password not in out and started["env"]["WEBUI_ADMIN_PASSWORD"] == password


def test_setup_installs_cpu_torch_before_open_webui_and_then_a_browser():
    script = (ROOT / "tools/webui/setup_venv.sh").read_text()
    torch = script.index('scripts/install_cpu_torch.sh" "$venv"')
    assert torch < script.index('-r "$here/requirements.txt"') < script.index('bash "$here/install_browser.sh"')
    assert "pip\" install -q torch" not in script, "torch only through the CPU-only installer"


WEBUI_CONFIG = ROOT / ".venv-webui/lib/python3.11/site-packages/open_webui/config.py"


def test_document_uploads_bypass_embeddings_the_endpoint_cannot_make():
    """No embeddings model is served: uploads must not be sent for embedding (issue 9, item 10)."""
    assert COMMON_ENV["BYPASS_EMBEDDING_AND_RETRIEVAL"] == "true"
    assert COMMON_ENV["ENABLE_MEMORIES"] == "false"  # memories are embeddings too
    # The names are Open WebUI 0.12.4's own (config.py reads them with os.getenv).
    assert WEBUI_CONFIG.is_file(), "Open WebUI is not set up: run `make setup-webui`"
    source = WEBUI_CONFIG.read_text()
    for name in ("BYPASS_EMBEDDING_AND_RETRIEVAL", "ENABLE_MEMORIES", "RAG_EMBEDDING_ENGINE"):
        assert f"os.getenv('{name}'" in source, name


WEBUI_ENV = WEBUI_CONFIG.with_name("env.py")


# Read by libraries Open WebUI imports (chromadb, scarf...), not by Open WebUI's own modules.
LIBRARY_ENV = {"ANONYMIZED_TELEMETRY", "DO_NOT_TRACK", "SCARF_NO_ANALYTICS"}


def test_every_setting_is_one_open_webui_reads():
    """A misspelt or renamed variable is silently ignored: each name must be read by this Open WebUI
    (config.py or env.py, with os.getenv), the admin bootstrap included (env.py WEBUI_ADMIN_*)."""
    assert WEBUI_CONFIG.is_file(), "Open WebUI is not set up: run `make setup-webui`"
    source = WEBUI_CONFIG.read_text() + WEBUI_ENV.read_text()
    from tests.support.charts import OIDC
    for name in [*(set(COMMON_ENV) - LIBRARY_ENV), "WEBUI_ADMIN_EMAIL", "WEBUI_ADMIN_PASSWORD", "WEBUI_ADMIN_NAME",
                 "OPENAI_API_KEYS", "OPENAI_API_BASE_URLS", *oidc_env(OIDC), "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"]:
        assert re.search(rf"os\.(getenv|environ\.get)\(\s*['\"]{name}['\"]", source), name

"""Open WebUI for local mode: the same version and settings as the chart's."""

from pathlib import Path

from config.versions import OPEN_WEBUI_IMAGE, OPEN_WEBUI_VERSION
from config.webui import COMMON_ENV
from tools.webui.run_local import LOCAL_MODE_BASE_URL, webui_env

ROOT = Path(__file__).resolve().parents[2]


def test_pypi_open_webui_is_the_charts_image_version():
    pins = [line.strip() for line in (ROOT / "tools/webui/requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert pins == [f"open-webui=={OPEN_WEBUI_VERSION}"]
    assert OPEN_WEBUI_IMAGE.endswith(f":v{OPEN_WEBUI_VERSION}")


def test_local_run_uses_the_shared_settings_and_local_mode(tmp_path):
    env = webui_env(base_url=LOCAL_MODE_BASE_URL, api_key="EMPTY", data_dir=tmp_path, port=8080)
    for key, value in COMMON_ENV.items():
        assert env[key] == value, key
    assert env["OFFLINE_MODE"] == "true" and env["ENABLE_OLLAMA_API"] == "false" and env["OLLAMA_BASE_URL"]
    assert env["RAG_EMBEDDING_ENGINE"] == "openai"
    assert env["OPENAI_API_BASE_URLS"] == "http://127.0.0.1:8000/v1" and env["DATA_DIR"] == str(tmp_path)
    assert env["HOST"] == "127.0.0.1"
    # a fresh signing key per run, never a fixed one
    other = webui_env(base_url=LOCAL_MODE_BASE_URL, api_key="EMPTY", data_dir=tmp_path, port=8080)
    assert env["WEBUI_SECRET_KEY"] != other["WEBUI_SECRET_KEY"] and len(env["WEBUI_SECRET_KEY"]) >= 32


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

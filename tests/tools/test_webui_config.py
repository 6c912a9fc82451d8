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


def test_setup_installs_cpu_torch_before_open_webui():
    script = (ROOT / "tools/webui/setup_venv.sh").read_text()
    assert script.index("install -q torch==2.13.0") < script.index('-r "$here/requirements.txt"')
    assert "apt-get install" in script and "chromium" in script

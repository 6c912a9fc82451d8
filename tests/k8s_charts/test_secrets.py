"""What External Secrets syncs where: the named API keys (whole JSON for the Ray pods, one consumer's
"current" each for Open WebUI and the smoke Job), the Ray token under KubeRay's key, Open WebUI's admin
password; and the named-key list validated before any chart is built."""

from __future__ import annotations

import dataclasses

import pytest

from config import names
from config.environments import ConfigError, validate
from config.secrets import (
    API_KEY_SECRET, API_KEY_SECRET_KEY, API_KEYS_DIR, API_KEYS_SECRET, DEFAULT_API_KEYS, KEY_CURRENT, RAY_AUTH_SECRET,
    SMOKE_TEST_KEY_NAME, WEBUI_ADMIN_PASSWORD_KEY, WEBUI_ADMIN_SECRET, WEBUI_KEY_NAME, ApiKeySpec,
    api_key_secret_name, ray_auth_secret_name, webui_admin_secret_name, webui_secret_name,
)
from tests.support.charts import IMAGE, VARIANTS, docs


def _external_secrets(files) -> dict[tuple[str, str], dict]:
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs(files) if d["kind"] == "ExternalSecret"}


def _data(es) -> dict[str, dict]:
    return {d["secretKey"]: d["remoteRef"] for d in es["spec"]["data"]}


def test_every_named_key_reaches_the_ray_pods_as_its_whole_json(synthesized):
    cfg, files = synthesized["env-dev"]
    es = _external_secrets(files)[(names.VLLM_NAMESPACE, API_KEYS_SECRET)]
    assert _data(es) == {k.name: {"key": api_key_secret_name(cfg.cluster_name, k.name)} for k in DEFAULT_API_KEYS}


@pytest.mark.parametrize("namespace, key_name", [(names.WEBUI_NAMESPACE, WEBUI_KEY_NAME),
                                                 (names.VLLM_NAMESPACE, SMOKE_TEST_KEY_NAME)])
def test_each_consumer_gets_only_the_current_value_of_its_own_key(synthesized, namespace, key_name):
    cfg, files = synthesized["env-dev"]
    es = _external_secrets(files)[(namespace, API_KEY_SECRET)]
    assert _data(es) == {API_KEY_SECRET_KEY: {"key": api_key_secret_name(cfg.cluster_name, key_name), "property": KEY_CURRENT}}


def test_ray_token_and_webui_admin_password(synthesized):
    cfg, files = synthesized["env-dev"]
    synced = _external_secrets(files)
    assert _data(synced[(names.VLLM_NAMESPACE, RAY_AUTH_SECRET)]) == {"auth_token": {"key": ray_auth_secret_name(cfg.cluster_name)}}
    assert _data(synced[(names.WEBUI_NAMESPACE, WEBUI_ADMIN_SECRET)]) == {
        WEBUI_ADMIN_PASSWORD_KEY: {"key": webui_admin_secret_name(cfg.cluster_name)}}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_only_this_environments_secrets_are_referenced(synthesized, variant):
    cfg, files = synthesized[variant]
    c = cfg.cluster_name
    expected = {api_key_secret_name(c, k.name) for k in DEFAULT_API_KEYS} | {
        ray_auth_secret_name(c), webui_secret_name(c), webui_admin_secret_name(c)}
    refs = {d["remoteRef"]["key"] for es in _external_secrets(files).values() for d in es["spec"]["data"]}
    assert refs == expected
    assert not [d for d in docs(files) if d["kind"] == "Secret"]  # values only ever come from ESO
    for es in _external_secrets(files).values():
        assert es["metadata"]["namespace"] in (names.VLLM_NAMESPACE, names.WEBUI_NAMESPACE)


def test_smoke_key_secret_and_api_keys_secret_differ():
    """The smoke Job's Secret (one plain key) must not be the Ray pods' directory of JSON keys."""
    assert API_KEY_SECRET != API_KEYS_SECRET


BAD_KEY_LISTS = [
    ((ApiKeySpec("apps"), ApiKeySpec(WEBUI_KEY_NAME)), "smoke-test"),
    ((ApiKeySpec("apps"), ApiKeySpec(SMOKE_TEST_KEY_NAME)), "open-webui"),
    ((*DEFAULT_API_KEYS, ApiKeySpec("Team_A")), "Team_A"),
    ((*DEFAULT_API_KEYS, ApiKeySpec("apps")), "duplicate"),
]


@pytest.mark.parametrize("keys, message", BAD_KEY_LISTS)
def test_bad_key_list_is_a_config_error_naming_api_keys(keys, message):
    """Before synthesis: in the environment config, and in explicitly given chart inputs alike."""
    from k8s_charts import ChartInputs
    cfg = VARIANTS["env-dev"]
    with pytest.raises(ConfigError, match=rf"api_keys: .*{message}"):
        validate(dataclasses.replace(cfg, api_keys=keys))
    secrets = tuple((k.name, api_key_secret_name(cfg.cluster_name, k.name)) for k in keys)
    with pytest.raises(ConfigError, match=rf"api_keys: .*{message}"):
        ChartInputs.for_environment(cfg, IMAGE, api_key_secrets=secrets)


@pytest.mark.parametrize("rpm", [0, -5, 1.5, True, "600"])
def test_bad_rate_limit_is_a_config_error_naming_the_key(rpm):
    cfg = VARIANTS["env-dev"]
    with pytest.raises(ConfigError, match=r"api_keys: team-a\.requests_per_minute"):
        validate(dataclasses.replace(cfg, api_keys=(*DEFAULT_API_KEYS, ApiKeySpec("team-a", rpm))))


def test_named_keys_follow_the_environment():
    """The key list of the environment is the one synced, mounted and rate-limited."""
    from k8s_charts import ChartInputs
    from k8s_charts.serve_config import serve_args
    cfg = dataclasses.replace(VARIANTS["env-dev"], api_keys=(*DEFAULT_API_KEYS, ApiKeySpec("team-a", 600)))
    inputs = ChartInputs.for_environment(cfg, IMAGE)
    assert ("team-a", api_key_secret_name(cfg.cluster_name, "team-a")) in inputs.api_key_secrets
    args = serve_args(cfg)
    assert args["api_keys_dir"] == API_KEYS_DIR and args["api_key_env"] == ""
    assert args["api_key_rate_limits"] == {"team-a": 600}

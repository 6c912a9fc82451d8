"""The pure pieces behind the endpoint's access control: the key ring, the rate limiter, the limit
checks and their config (the real server runs them in test_hostile.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from config.environments import ConfigError, load_config, validate
from config.request_limits import RequestLimitsError, derive_request_limits
from serving.keys import KeyRing, describe_missing
from serving.rate_limit import RateLimiter, retry_after_header
from serving.request_checks import Refusal, check_generation
from serving.settings import ServingSettings, SettingsError, local_cpu_args
from tests.support.fake_clock import FakeClock

LIMITS = derive_request_limits(max_num_seqs=8, max_model_len=4096)


def _ring(tmp_path, clock, **files) -> KeyRing:
    for name, value in files.items():
        (tmp_path / name).write_text(value if isinstance(value, str) else json.dumps(value))
    return KeyRing(str(tmp_path), clock=clock, reload_interval_s=5)


def test_key_ring_knows_each_named_key_current_and_previous(tmp_path):
    ring = _ring(tmp_path, FakeClock(), apps={"current": "a1"}, team={"current": "t2", "previous": "t1"})
    assert ring.names == ["apps", "team"]
    assert [ring.identify(k) for k in ("a1", "t2", "t1", "x", "", "a1 ")] == ["apps", "team", "team", None, None, None]


def test_key_ring_rereads_the_directory_after_the_interval(tmp_path):
    clock = FakeClock()
    ring = _ring(tmp_path, clock, team={"current": "old"})
    (tmp_path / "team").write_text(json.dumps({"current": "new"}))
    assert ring.identify("old") == "team"  # not yet re-read
    clock.sleep(5)
    assert ring.identify("new") == "team" and ring.identify("old") is None


@pytest.mark.parametrize("text", ["not json", "[]", '{"previous": "x"}', '{"current": 5}', '{"current": "k", "next": "n"}'])
def test_a_malformed_key_file_gives_no_key_and_says_why(tmp_path, text):
    ring = _ring(tmp_path, FakeClock(), bad=text, good={"current": "g"})
    assert ring.names == ["good"] and ring.identify("g") == "good"
    assert len(ring.problems) == 1 and "'bad'" in ring.problems[0]


def test_empty_keys_are_never_valid(tmp_path):
    ring = _ring(tmp_path, FakeClock(), blank={"current": "  ", "previous": ""})
    assert ring.names == [] and ring.identify("") is None and ring.identify("  ") is None
    assert KeyRing("", env_key="").names == []
    assert "refusing to start" in describe_missing(str(tmp_path), "") and str(tmp_path) in describe_missing(str(tmp_path), "")


def test_rate_limiter_allows_the_burst_then_refills():
    clock = FakeClock()
    limiter = RateLimiter({"team": 3}, clock)
    assert [limiter.acquire("team") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("team")
    assert wait == pytest.approx(20.0) and retry_after_header(wait) == "20"
    clock.sleep(20)
    assert limiter.acquire("team") == 0.0 and limiter.acquire("team") > 0
    assert all(limiter.acquire("other") == 0.0 for _ in range(100))  # no limit: never limited


def _check(path, request, **kw):
    return check_generation(path, request, LIMITS, body_bytes=len(json.dumps(request)), max_model_len=4096, **kw)


def test_default_max_tokens_is_filled_in_only_when_the_prompt_leaves_room():
    short = _check("/v1/completions", {"prompt": "Hi"})
    assert short["max_tokens"] == LIMITS.default_max_tokens
    long_prompt = {"prompt": "x" * 3500}  # 3500 bytes: may be 3500 tokens; +1024 would not fit 4096
    assert "max_tokens" not in _check("/v1/completions", long_prompt)
    assert _check("/v1/chat/completions", {"messages": [], "max_completion_tokens": 5}) == {"messages": [], "max_completion_tokens": 5}


def test_prompts_times_n_is_bounded_by_the_batch():
    refusal = _check("/v1/completions", {"prompt": ["a", "b", "c"], "n": 3})
    assert isinstance(refusal, Refusal) and refusal.param == "n" and "9 sequences" in refusal.message
    assert not isinstance(_check("/v1/completions", {"prompt": ["a", "b"], "n": 4}), Refusal)
    # A token-id list is one prompt, not len(list) prompts.
    assert not isinstance(_check("/v1/completions", {"prompt": list(range(50)), "n": 8}), Refusal)


def test_limits_config_derives_from_the_preset_and_takes_overrides():
    cfg = load_config({})
    assert cfg.limits.max_sequences == cfg.preset.max_num_seqs and cfg.limits.max_max_tokens == cfg.preset.max_model_len // 2
    lowered = validate(dataclasses.replace(cfg, request_limits={"max_max_tokens": 256}))
    assert lowered.limits.max_max_tokens == 256 and lowered.limits.default_max_tokens == 256


@pytest.mark.parametrize("overrides, field", [
    ({"max_sequences": 999}, "max_sequences"), ({"max_max_tokens": 10**6}, "max_max_tokens"),
    ({"max_stop": 0}, "max_stop"), ({"no_such_limit": 1}, "no_such_limit"),
    ({"default_max_tokens": 4000, "max_max_tokens": 100}, "default_max_tokens"),
])
def test_bad_limit_overrides_fail_before_synthesis_naming_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        validate(dataclasses.replace(load_config({}), request_limits=overrides))
    with pytest.raises(RequestLimitsError):
        derive_request_limits(8, 4096, overrides)


def test_model_revision_must_be_a_commit():
    with pytest.raises(ConfigError, match="model_revision"):
        load_config({"model_revision": "main"})


@pytest.mark.parametrize("overrides, message", [
    ({"auth": "api_keys"}, "needs a key source"), ({"auth": "open"}, "auth: 'open'"),
    ({"api_keys_dir": "relative/dir"}, "absolute path"), ({"revision": "main"}, "40-hex"),
    ({"api_key_rate_limits": {"x": 5}}, "auth is 'disabled'"),
])
def test_bad_auth_args_fail_at_replica_start_naming_the_field(overrides, message):
    with pytest.raises(SettingsError, match=message):
        ServingSettings.from_args(local_cpu_args("/m", "m", **overrides))


def test_the_cluster_args_require_the_mounted_keys():
    from config.secrets import API_KEYS_DIR
    from k8s_charts.serve_config import serve_args

    args = serve_args(load_config({}))
    assert args["auth"] == "api_keys" and args["api_keys_dir"] == API_KEYS_DIR and args["api_key_env"] == ""
    # The engine loads the model store's local copy (fetched at model_revision): no hub revision to pass.
    assert args["revision"] == "" and args["request_limits"] == load_config({}).limits.to_args()
    assert ServingSettings.from_args(args).engine_options()["override_generation_config"] == {
        "max_new_tokens": load_config({}).limits.max_max_tokens}

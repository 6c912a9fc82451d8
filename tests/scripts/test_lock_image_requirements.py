"""scripts/lock_image_requirements.py's pure logic: DLC pins as constraints, closure, rendering. No network."""

from __future__ import annotations

import pytest

from scripts import lock_image_requirements as lock

ENV = {"python_version": "3.12", "python_full_version": "3.12.11", "sys_platform": "linux", "platform_machine": "x86_64",
       "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "platform_release": "", "platform_version": "",
       "implementation_version": "3.12.11"}
H = ("a" * 64, "b" * 64)
FACTS = {
    "python": {"version": "3.12.11"},
    "packages": {"pinned_by_the_dlc": {"vllm": {"version": "0.16.0"}},
                 "dlc_model": {"dlc_installs": ["torch==2.9.0"], "vllm_common_requirements": ["aiohttp>=3.13.3"],
                               "not_on_pypi": ["torch-neuronx"]}},
}


def test_parse_pins_normalizes_names_and_drops_extras_comments_and_hashes():
    text = "# c\nray[serve]==2.60.0\nTyping_Extensions==4.15.0 \\\n    --hash=sha256:" + H[0] + "\nsix==1.17.0 ; python_version > '3.11'\n"
    assert lock.parse_pins(text) == {"ray": "2.60.0", "typing-extensions": "4.15.0", "six": "1.17.0"}


def test_parse_pins_refuses_a_range():
    with pytest.raises(lock.LockError, match="not an exact pin: 'fastapi>=0.115'"):
        lock.parse_pins("fastapi>=0.115\n")


def test_dlc_versions_become_constraints_except_our_overrides_and_what_pypi_lacks():
    dlc = {"aiohttp": "3.13.3", "fastapi": "0.128.0", "torch-neuronx": "2.9.0.2.15", "torch": "2.9.0+cu128", "six": "1.17.0"}
    assert lock.dlc_constraints(dlc, overrides={"fastapi"}, not_on_pypi={"torch-neuronx"}) == ["aiohttp==3.13.3", "six==1.17.0"]


def test_closure_follows_extras_and_evaluates_markers_for_the_dlcs_python():
    installed = {
        "ray": {"requires_dist": ["click>=7", "fastapi; extra == 'serve'", "colorama; sys_platform == 'win32'"]},
        "fastapi": {"requires_dist": ["starlette<2", "uvicorn[standard]; extra == 'standard'"]},
        "starlette": {"requires_dist": ["anyio"]},
        "click": {}, "anyio": {"requires_dist": ["typing_extensions>=4.5; python_version < '3.13'"]},
        "typing-extensions": {}, "torch": {"requires_dist": ["sympy"]},
    }
    assert lock.closure(installed, ["ray[serve]==2.60.0"], ENV) == {"ray", "click", "fastapi", "starlette", "anyio",
                                                                    "typing-extensions"}
    with pytest.raises(lock.LockError, match="missing-dep is required"):
        lock.closure({"a": {"requires_dist": ["missing-dep"]}}, ["a"], ENV)


def test_classify_installs_new_packages_and_our_pins_and_keeps_the_dlcs_other_copies():
    kinds = lock.classify({"ray": "2.60.0", "aiohttp": "3.13.3", "fastapi": "0.136.3", "numpy": "2.3.5"},
                          {"aiohttp": "3.13.3", "fastapi": "0.128.0", "numpy": "1.26.4"}, ours={"ray", "aiohttp", "fastapi"})
    # numpy: the DLC's copy stays even if the resolution saw another version; aiohttp: our pin, installed.
    assert kinds == {"ray": "new", "aiohttp": "override", "fastapi": "override", "numpy": "dlc"}


def _entries():
    return [lock.Entry("ray", "2.60.0", "new", H), lock.Entry("numpy", "2.3.5", "dlc", ()),
            lock.Entry("fastapi", "0.136.3", "override", H, "0.128.0")]


def test_render_installs_only_new_and_overriding_packages_and_parses_back():
    text = lock.render(_entries(), "f" * 64, "modelled")
    assert "# packages: 3 (installed: new above the DLC 1, overriding the DLC's 1; kept at the DLC's version: 1)" in text
    assert (f"fastapi==0.136.3 \\\n    --hash=sha256:{H[0]} \\\n    --hash=sha256:{H[1]}\n"
            "    # override: pinned in requirements-image.txt; the DLC has 0.128.0") in text
    assert "# kept: numpy==2.3.5\n" in text
    assert text.index("fastapi==") < text.index("numpy==") < text.index("ray==")  # sorted: stable diffs
    digest, entries = lock.parse_lock(text)
    assert digest == "f" * 64 and sorted(entries, key=lambda e: e.name) == sorted(_entries(), key=lambda e: e.name)
    assert lock.parse_pins(text) == {"ray": "2.60.0", "fastapi": "0.136.3"}  # what pip installs from it


def test_render_refuses_an_unhashed_entry():
    with pytest.raises(lock.LockError, match="ray: no hashes"):
        lock.render([lock.Entry("ray", "2.60.0", "new", ())], "f" * 64, "modelled")


def test_digest_changes_with_every_input():
    base = lock.inputs_digest("ray[serve]==2.60.0\n", FACTS, None)
    assert base == lock.inputs_digest("# a comment\nray[serve]==2.60.0  # why\n", FACTS, None)  # comments are not inputs
    bumped_dlc = {**FACTS, "packages": {**FACTS["packages"], "pinned_by_the_dlc": {"vllm": {"version": "0.17.0"}}}}
    other_python = {**FACTS, "python": {"version": "3.13.1"}}
    assert len({base, lock.inputs_digest("ray[serve]==2.61.0\n", FACTS, None), lock.inputs_digest("ray[serve]==2.60.0\n", bumped_dlc, None),
                lock.inputs_digest("ray[serve]==2.60.0\n", other_python, None),
                lock.inputs_digest("ray[serve]==2.60.0\n", FACTS, "six==1.17.0\n")}) == 5


def test_check_mode_reports_a_stale_lock(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lock, "LOCK", tmp_path / "requirements-image.lock")
    monkeypatch.setattr(lock, "REPO", tmp_path)
    lock.LOCK.write_text(lock.render(_entries(), "0" * 64, "modelled"))
    assert lock.main(["--check"]) == 1
    assert "requirements-image.lock is stale: re-run scripts/lock_image_requirements.py" in capsys.readouterr().err
    lock.LOCK.write_text(lock.render(_entries(), lock.current_digest(), "modelled"))
    assert lock.main(["--check"]) == 0


def test_find_python_names_the_flag_when_no_interpreter_fits():
    with pytest.raises(lock.LockError, match="pass --python /path/to/python3.99"):
        lock.find_python("3.99", None)

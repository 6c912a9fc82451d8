"""config/cold_start.py and config/node_io.py: the cold-start phases are derived from their inputs (bytes,
rates, the root volume the EC2NodeClass provisions), every figure says how it was obtained, and the
deadline every readiness timeout uses derives from the first deploy. No hard-coded totals."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from config import cold_start as cs
from config import node_io
from config.node_fit import INSTANCE_TYPES
from config.presets import PRESETS

PHASES = ["Karpenter + EC2 launch", "node ready", "image pull", "weights fetch", "artifact fetch", "Neuron load",
          "engine warm-up", "Serve ready"]
URL = re.compile(r"https://\S+")
BENCH_SCRIPT = re.compile(r"tools/bench/\w+\.py")
REPO = Path(__file__).resolve().parents[2]


def _by_name(phases):
    return {p.name: p for p in phases}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_cold_path_has_issue_12s_phases_in_order(name):
    budget = cs.cold_start_budget(PRESETS[name])
    assert [p.name for p in budget.phases] == PHASES
    first = [p.name for p in budget.first_deploy]
    # The first deploy swaps the store's weights and artifacts for the hub download and one compile.
    assert "Neuron compile" in first and "artifact fetch" not in first and "weights fetch" not in first
    assert first[:3] == PHASES[:3] and first[-3:] == PHASES[-3:]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_phase_says_how_its_figure_was_obtained(name):
    budget = cs.cold_start_budget(PRESETS[name])
    for phase in (*budget.phases, *budget.first_deploy):
        assert phase.kind in cs.KINDS
        if phase.kind == "measured":
            assert URL.search(phase.basis), (name, phase.name)  # a public measurement, cited
        if phase.kind == "proxy":  # a public measurement cited, or one taken here by a script of tools/bench/
            scripts = [m for m in BENCH_SCRIPT.findall(phase.basis) if (REPO / m).is_file()]
            assert URL.search(phase.basis) or scripts, (name, phase.name)
        if phase.kind == "estimate":
            assert "estimate" in phase.basis or "extrapolated" in phase.basis, (name, phase.name)
    assert budget.unsourced == tuple(p for p in budget.phases if p.kind == "estimate")
    assert budget.meets_goal == (budget.cold_seconds < cs.GOAL_SECONDS and not budget.unsourced)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        cs.Phase("x", 1, "y", "guess")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_downloads_are_bytes_over_the_binding_rate(name):
    itype = PRESETS[name].instance_type
    phases = _by_name(cs.cold_start_budget(PRESETS[name]).phases)
    limits = node_io.s3_fetch_limits(itype)
    rate = min(limits.values())
    assert phases["weights fetch"].seconds == math.ceil(cs.WEIGHTS_GB * 1000 / rate)
    assert phases["artifact fetch"].seconds == math.ceil(cs.ARTIFACT_GB * 1000 / rate)
    assert f"at {rate:.0f} MB/s" in phases["weights fetch"].basis
    assert limits[f"gp3 {node_io.NEURON_ROOT_GP3.throughput_mibps} MiB/s"] == pytest.approx(1000 * 2**20 / 1e6)


def test_inf2_8xlarge_weights_are_bound_by_the_root_volume_not_s3_or_the_network():
    rate, binding = node_io.s3_fetch_mb_per_s("inf2.8xlarge")
    assert binding.startswith("gp3")
    # At gp3's default 125 MiB/s the same 16 GB would take minutes: why the Neuron root is provisioned.
    slow, slow_binding = node_io.s3_fetch_mb_per_s("inf2.8xlarge", root=node_io.GP3_BASELINE)
    assert slow_binding.startswith("gp3") and cs.WEIGHTS_GB * 1000 / slow > 120 > cs.WEIGHTS_GB * 1000 / rate


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_image_pull_uses_the_measured_soci_rate_within_the_instance_limits(name):
    itype = PRESETS[name].instance_type
    pull = _by_name(cs.cold_start_budget(PRESETS[name]).phases)["image pull"]
    rate, within = cs.image_pull_rate(itype)
    soci = cs.SOCI_PULL_MEASURED[0] / cs.SOCI_PULL_MEASURED[1] / 1e6
    default = cs.DEFAULT_PULL_MEASURED[0] / cs.DEFAULT_PULL_MEASURED[1] / 1e6
    assert rate <= soci and rate <= node_io.INSTANCE_IO[itype].network_mb_per_s
    assert pull.seconds == math.ceil(cs.IMAGE_GB * 1000 / rate)
    assert pull.seconds < math.ceil(cs.IMAGE_GB * 1000 / default)  # parallel pull saves time over the default
    assert (pull.kind == "computed") == within
    assert cs.PULL_SOURCE in pull.basis and "upper bound" in pull.basis


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_deadline_derives_from_the_first_deploy(name):
    budget = cs.cold_start_budget(PRESETS[name])
    assert budget.cold_seconds == sum(p.seconds for p in budget.phases)
    assert budget.first_deploy_seconds == sum(p.seconds for p in budget.first_deploy)
    assert budget.budget_seconds == math.ceil(budget.first_deploy_seconds * cs.MARGIN / cs.ROUND_TO_S) * cs.ROUND_TO_S
    assert budget.first_deploy_seconds > budget.cold_seconds
    assert budget.initializing_timeout == f"{budget.budget_seconds // 60}m"
    assert budget.smoke_step_timeout_minutes * 60 >= budget.budget_seconds + cs.STEP_OVERHEAD_SECONDS
    assert _by_name(budget.first_deploy)["Neuron compile"].seconds == cs.compile_seconds(PRESETS[name])


def test_a_bigger_image_lengthens_both_paths_and_may_move_the_deadline(monkeypatch):
    p = PRESETS["inf2.8xlarge"]
    before = cs.cold_start_budget(p)
    monkeypatch.setattr(cs, "IMAGE_GB", cs.IMAGE_GB * 2)
    after = cs.cold_start_budget(p)
    grew = _by_name(after.phases)["image pull"].seconds - _by_name(before.phases)["image pull"].seconds
    assert grew > 0
    assert after.cold_seconds - before.cold_seconds == grew == after.first_deploy_seconds - before.first_deploy_seconds
    assert after.budget_seconds >= before.budget_seconds


def test_the_instance_io_table_covers_every_instance_type():
    assert set(node_io.INSTANCE_IO) == set(INSTANCE_TYPES) == {p.instance_type for p in PRESETS.values()}


def test_the_neuron_root_volume_is_a_valid_gp3_configuration():
    root = node_io.NEURON_ROOT_GP3
    assert node_io.GP3_BASELINE.iops <= root.iops <= 500 * node_io.NEURON_ROOT_GIB  # gp3: at most 500 IOPS per GiB
    assert root.throughput_mibps <= node_io.GP3_MAX_THROUGHPUT_MIBPS
    assert root.throughput_mibps <= root.iops * node_io.GP3_MIBPS_PER_IOPS


def test_the_root_volume_cost_is_the_price_list_applied():
    root = node_io.Gp3Root(iops=4000, throughput_mibps=225)
    assert node_io.gp3_performance_usd_per_month(root) == pytest.approx(1000 * 0.005 + 100 * 0.04)
    assert node_io.gp3_performance_usd_per_month(node_io.GP3_BASELINE) == 0
    assert node_io.gp3_usd_per_month(root, 100) == pytest.approx(8 + 5 + 4)


def test_longer_context_only_lengthens_the_first_deploy():
    p = PRESETS["inf2.8xlarge"]
    short, long_ = (cs.cold_start_budget(replace(p, max_model_len=n)) for n in (4096, 8192))
    assert long_.cold_seconds == short.cold_seconds
    assert long_.first_deploy_seconds - short.first_deploy_seconds == 4 * cs.COMPILE_PER_1K_TOKENS_S

"""`make cold-start` (tools/cold_start.py): every preset, every phase of the cold path and of the first
deploy with its figure, kind and source, totals that are the sums of the phases, a verdict against the
180 s goal that counts unsourced phases, the deadline the timeouts use, and the blueprint beside it."""

from __future__ import annotations

import re

import pytest

from config import cold_start as budget_module
from config.cold_start import GOAL_SECONDS, cold_start_budget
from config.presets import PRESETS
from tools import cold_start


def _section(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(name)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start + 1:end]


def _seconds(line: str, label: str) -> int:
    return int(re.search(rf"{re.escape(label)}\s+(\d+) s", line).group(1))


def _printed(section: list[str], phase, indent: str) -> bool:
    return any(line.startswith(indent + phase.name + " ") and f" {phase.seconds} s  {phase.kind} " in line
               and line.endswith(phase.basis) for line in section)


@pytest.fixture(scope="module")
def output():
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cold_start.main([]) == 0
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_phase_is_printed_with_figure_kind_and_source(output, name):
    budget = cold_start_budget(PRESETS[name])
    section = _section(output, name)
    for phase in budget.phases:
        assert _printed(section, phase, "  "), (name, phase.name)
    for phase in budget.first_deploy:
        assert _printed(section, phase, "    "), (name, "first deploy", phase.name)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_totals_are_the_sums_and_the_verdict_counts_unsourced_phases(output, name):
    budget = cold_start_budget(PRESETS[name])
    section = _section(output, name)
    [total] = [line for line in section if line.strip().startswith("total")]
    assert _seconds(total, "total") == sum(p.seconds for p in budget.phases)
    over = budget.cold_seconds - GOAL_SECONDS
    assert (f"{over} s over" in total) if over >= 0 else (f"{-over} s under" in total)
    unsourced = [p.name for p in budget.phases if p.kind == "estimate"]
    if unsourced:
        assert f"{len(unsourced)} phase(s) unsourced: {', '.join(unsourced)}" in total
    else:
        assert "every phase sourced" in total
    assert ("goal MET" in total) == (over < 0 and not unsourced)
    [first] = [line for line in section if line.strip().startswith("first deploy total")]
    assert _seconds(first, "first deploy total") == sum(p.seconds for p in budget.first_deploy)
    [deadline] = [line for line in section if line.strip().startswith("deadline")]
    assert _seconds(deadline, "deadline") == budget.budget_seconds
    assert f"initializing-timeout {budget.initializing_timeout}," in deadline
    assert f"smoke step {budget.smoke_step_timeout_minutes} min" in deadline
    [blueprint] = [line for line in section if line.strip().startswith("blueprint")]
    assert _seconds(blueprint, "blueprint") == budget_module.BLUEPRINT_LOAD_S


def test_the_blueprint_and_the_root_volume_cost_close_the_report(output):
    assert output.splitlines()[-2] == budget_module.BLUEPRINT
    assert output.splitlines()[-1] == cold_start.root_volume_cost()
    assert "USD" in output.splitlines()[-1] and "aws.amazon.com/ebs/pricing" in output.splitlines()[-1]


def test_one_preset_prints_one_section(capsys):
    assert cold_start.main(["--preset", "inf2.8xlarge"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "inf2.8xlarge"
    assert not any(line == other for line in out.splitlines() for other in PRESETS if other != "inf2.8xlarge")


def test_an_unknown_preset_is_refused_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        cold_start.main(["--preset", "inf2.9xlarge"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--preset" in err and "inf2.8xlarge" in err

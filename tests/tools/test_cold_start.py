"""`make cold-start` (tools/cold_start.py): every preset, every phase with its source, and a total that
is the sum of the phases, judged against the 180 s goal."""

from __future__ import annotations

import re

import pytest

from config.cold_start import cold_start_budget
from config.presets import PRESETS
from tools import cold_start


def _section(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(name)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start + 1:end]


def test_every_preset_prints_its_phases_total_and_deadline(capsys):
    assert cold_start.main([]) == 0
    out = capsys.readouterr().out
    for name, preset in PRESETS.items():
        budget = cold_start_budget(preset)
        section = _section(out, name)
        for phase in budget.phases:
            assert any(line.split()[:len(phase.name.split())] == phase.name.split() and f" {phase.seconds} s " in line
                       and phase.basis in line for line in section), (name, phase.name)
        [total] = [line for line in section if line.strip().startswith("total")]
        seconds = int(re.search(r"total\s+(\d+) s", total).group(1))
        assert seconds == sum(p.seconds for p in budget.phases)
        over = seconds - cold_start.GOAL_SECONDS
        assert (f"{over} s over" in total) if over > 0 else ("within" in total)
        [deadline] = [line for line in section if line.strip().startswith("deadline")]
        assert budget.initializing_timeout in deadline
    assert "blueprint" in out


def test_an_unknown_preset_is_refused_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        cold_start.main(["--preset", "inf2.9xlarge"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--preset" in err and "inf2.8xlarge" in err

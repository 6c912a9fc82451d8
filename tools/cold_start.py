"""The cold-start budget per preset: every phase of a replica on a fresh node, its figure and source.

    python -m tools.cold_start [--preset NAME]      (make cold-start)

Prints config/cold_start.py for each accelerator preset (or one): the cold path (a fresh node, the
weights and compiled artifacts in the S3 model store) phase by phase with how each figure was obtained
and its source, its total against issue 12's goal (first token within GOAL_SECONDS of Karpenter deciding
to launch the node; met only if every phase is sourced), then the first deploy (nothing in the store:
one compile) and the deadline derived from it that KubeRay's `ray.io/initializing-timeout` and the
pipeline's smoke wait both use. The original blueprint's figure is printed beside each total.
"""

from __future__ import annotations

import argparse
import sys

from config.cold_start import (
    BLUEPRINT, BLUEPRINT_LOAD_S, BLUEPRINT_WAIT_S, GOAL_SECONDS, MARGIN, ColdStartBudget, Phase, cold_start_budget,
)
from config import node_io
from config.presets import PRESETS

NAME_WIDTH = 24


def _phase_line(phase: Phase, indent: str = "  ") -> str:
    return f"{indent}{phase.name:{NAME_WIDTH}s} {phase.seconds:6d} s  {phase.kind:9s} {phase.basis}"


def verdict(budget: ColdStartBudget) -> str:
    total = budget.cold_seconds
    timing = f"{GOAL_SECONDS - total} s under" if total < GOAL_SECONDS else f"{total - GOAL_SECONDS} s over"
    if budget.unsourced:
        sourcing = f"{len(budget.unsourced)} phase(s) unsourced: {', '.join(p.name for p in budget.unsourced)}"
    else:
        sourcing = "every phase sourced"
    return f"{timing}; {sourcing}; goal {'MET' if budget.meets_goal else 'NOT MET'}"


def report(preset_names: list[str]) -> str:
    lines = []
    for name in preset_names:
        budget = cold_start_budget(PRESETS[name])
        lines.append(f"{name}")
        lines.append("  cold path: a fresh node, weights and compiled artifacts in the S3 model store")
        lines.extend(_phase_line(p) for p in budget.phases)
        lines.append(f"  {'total':{NAME_WIDTH}s} {budget.cold_seconds:6d} s  goal {GOAL_SECONDS} s: {verdict(budget)}")
        lines.append(f"  {'blueprint':{NAME_WIDTH}s} {BLUEPRINT_LOAD_S:6d} s  compile + load only; it waits up to "
                     f"{BLUEPRINT_WAIT_S} s for a worker")
        lines.append("  first deploy: nothing in the store yet (weights from the hub, one Neuron compile)")
        lines.extend(_phase_line(p, "    ") for p in budget.first_deploy)
        lines.append(f"  {'first deploy total':{NAME_WIDTH}s} {budget.first_deploy_seconds:6d} s")
        lines.append(f"  {'deadline':{NAME_WIDTH}s} {budget.budget_seconds:6d} s  first deploy x{MARGIN}: KubeRay "
                     f"initializing-timeout {budget.initializing_timeout}, smoke step "
                     f"{budget.smoke_step_timeout_minutes} min")
    lines.append(BLUEPRINT)
    lines.append(root_volume_cost())
    return "\n".join(lines)


def root_volume_cost() -> str:
    """What the Neuron nodes' fast root volume costs (config/node_io.py, the EC2NodeClass's figures)."""
    root = node_io.NEURON_ROOT_GP3
    perf = node_io.gp3_performance_usd_per_month(root)
    total = node_io.gp3_usd_per_month(root, node_io.NEURON_ROOT_GIB)
    return (f"Neuron root volume: gp3 {node_io.NEURON_ROOT_GIB} GiB, {root.iops} IOPS, {root.throughput_mibps} MiB/s: "
            f"USD {total:.2f}/month per node (USD {total / node_io.HOURS_PER_MONTH:.3f}/h), of which "
            f"USD {perf:.2f} for IOPS and throughput above gp3's free 3000 / 125 MiB/s ({node_io.GP3_PRICE_SOURCE})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="one preset (default: all)")
    opts = parser.parse_args(argv)
    print(report([opts.preset] if opts.preset else sorted(PRESETS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

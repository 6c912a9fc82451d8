"""The cold-start budget per preset: every phase of a first replica on a fresh node, its figure and source.

    python -m tools.cold_start [--preset NAME]      (make cold-start)

Prints config/cold_start.py's phases for each accelerator preset (or one), their sum against issue
12's goal (first token within GOAL_SECONDS of Karpenter deciding to launch the node), and the deadline
derived from them that KubeRay's `ray.io/initializing-timeout` and the pipeline's smoke wait both use.
The blueprint's own figure is printed beside it. The phases are today's: without the S3 model store
every new node downloads the weights from the Hugging Face hub and compiles for Neuron again.
"""

from __future__ import annotations

import argparse
import sys

from config.cold_start import cold_start_budget
from config.presets import PRESETS

GOAL_SECONDS = 180
# awslabs/data-on-eks, "Llama-3-8B with vLLM on Inferentia2": its replica compiled and loaded in
# 10 min 40 s on inf2.8xlarge at 4096 tokens (config/presets.py), after the node and image were there.
BLUEPRINT = "blueprint (data-on-eks): compile + load 640 s on inf2.8xlarge, node and image pull not counted"


def report(preset_names: list[str]) -> str:
    lines = []
    for name in preset_names:
        budget = cold_start_budget(PRESETS[name])
        lines.append(f"{name}")
        for phase in budget.phases:
            lines.append(f"  {phase.name:18s} {phase.seconds:6d} s   {phase.basis}")
        total = budget.expected_seconds
        verdict = "within" if total <= GOAL_SECONDS else f"{total - GOAL_SECONDS} s over"
        lines.append(f"  {'total':18s} {total:6d} s   goal {GOAL_SECONDS} s: {verdict}")
        lines.append(f"  {'deadline':18s} {budget.budget_seconds:6d} s   KubeRay initializing-timeout "
                     f"{budget.initializing_timeout}, smoke step {budget.smoke_step_timeout_minutes} min")
    lines.append(BLUEPRINT)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="one preset (default: all)")
    opts = parser.parse_args(argv)
    print(report([opts.preset] if opts.preset else sorted(PRESETS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

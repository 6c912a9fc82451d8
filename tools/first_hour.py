"""The operator's first hour after `cdk deploy`: copy-paste commands for one environment.

    python -m tools.first_hour --env dev      (or: make first-hour ENV=dev)

The command text is written once, in config/first_hour.py: the stack outputs
(platform_constructs/first_hour_outputs.py) and this CLI both print what `first_hour_steps` returns.
"""

from __future__ import annotations

import argparse
import sys

from config.environments import ConfigError, EnvironmentConfig, load_config
from config.first_hour import steps_for


def render(cfg: EnvironmentConfig) -> str:
    lines = [f"# First hour with environment {cfg.name}: cluster {cfg.cluster_name} in {cfg.region}",
             "# (port-forwards keep running: give each its own terminal)", ""]
    for number, step in enumerate(steps_for(cfg), start=1):
        lines += [f"# {number}. {step.title}", step.command, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.first_hour", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="environment name from config/environments.py (default: dev)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config({"env": args.env} if args.env else {})
    except ConfigError as exc:
        parser.error(str(exc))
    print(render(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())

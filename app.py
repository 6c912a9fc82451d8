#!/usr/bin/env python3
"""The CDK app: one environment (`-c env=dev|prod`, default dev) of the Llama-3 on Inferentia2 platform.

    app.py            reads the config, builds the environment's stacks, runs cdk-nag
    stacks/           one module per deployable stack (see stacks/__init__.py for the list)
    platform_constructs/   the reusable pieces those stacks are made of
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config.environments import PIPELINE, ConfigError, all_environments, load_config, validate_pipeline
from config.project import PIPELINE_STACK_NAME
from stacks import build_environment
from stacks.pipeline_stack import PipelineStack

CONTEXT_KEYS = ("env", "account", "region", "accelerator_preset", "model_id", "kubernetes_version",
                "endpoint_public_cidrs", "admin_role_arns", "availability_zones", "alb_certificate_arn",
                "alb_allowed_cidrs", "alb_internet_facing")


def build_app(context: dict | None = None, outdir: str | None = None) -> cdk.App:
    """Build (not synthesize) the app; raises ConfigError before creating any construct."""
    app = cdk.App(context=context or None, outdir=outdir)
    cfg = load_config({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    build_environment(app, cfg)
    # CDK Pipelines: promotes every environment, dev then prod (deploy it once; it then updates itself).
    PipelineStack(app, PIPELINE_STACK_NAME, pipeline=validate_pipeline(PIPELINE), environments=all_environments(),
                  env=cdk.Environment(account=PIPELINE.account, region=PIPELINE.region))
    # AWS Solutions checks on every stack; findings fail the synth unless acknowledged with a reason.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> int:
    try:
        app = build_app()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reusable CDK constructs of the platform: networking pieces, EKS add-ons (one per file), Karpenter pools.

Named `platform_constructs` (not `constructs`): a top-level package called `constructs` would shadow
the `constructs` library that aws-cdk-lib itself imports, and every synth would fail.
"""

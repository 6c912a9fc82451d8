"""cdk.json decides every feature flag the installed aws-cdk-lib recommends (docs/feature-flags.md).

A CDK upgrade that adds flags fails here until each new flag is set in cdk.json (recommended value)
or listed, with its reason, in config.feature_flags.NOT_APPLIED.
"""

import json

from config.feature_flags import NOT_APPLIED, cdk_json_context, recommended_flags, undecided
from config.project import PIPELINE_STACK_NAME, PROJECT_SLUG, PROJECT_TAG


def test_every_recommended_flag_is_decided_in_cdk_json():
    problems = undecided()
    assert not problems, "\n".join(f"{flag}: {problem}" for flag, problem in problems.items())


def test_not_applied_flags_are_current_recommendations_with_a_reason():
    recommended = recommended_flags()
    for flag, (value, reason) in NOT_APPLIED.items():
        assert flag in recommended, f"{flag} is no longer a recommended flag: drop it from NOT_APPLIED"
        assert value != recommended[flag], f"{flag}: the recommended value is now {value!r}; drop it from NOT_APPLIED"
        assert len(reason) > 40, f"{flag}: give the reason it is not applied"


def test_cdk_json_sets_no_flag_the_library_does_not_recommend():
    """A flag dropped from the recommendations (or a typo) shows up here instead of lingering."""
    recommended = recommended_flags()
    stray = [key for key in cdk_json_context() if key.startswith(("@aws-cdk", "aws-cdk:")) and key not in recommended]
    assert not stray, stray


def test_tests_synthesize_with_the_cdk_json_flags(synth_dev):
    """The session synthesis (tests/support/synth.py) passes cdk.json's context as the CLI would: with
    @aws-cdk/aws-codepipeline:crossAccountKeyAliasStackSafeResourceName the pipeline's artifact-key
    alias keeps the stack name's hyphens."""
    assert cdk_json_context()["@aws-cdk/aws-codepipeline:crossAccountKeyAliasStackSafeResourceName"] is True
    aliases = [res["Properties"]["AliasName"] for res in synth_dev.resources("AWS::KMS::Alias", "Pipeline").values()]
    assert any(a.startswith(f"alias/codepipeline-{PIPELINE_STACK_NAME.lower()}-") for a in aliases), aliases


def test_environment_stacks_keep_their_stack_tags(synth_dev):
    """@aws-cdk/core:explicitStackTags stops Tags.of(stack) from tagging the stack itself;
    build_environment passes the tags to each stack, so CloudFormation (CLI and pipeline) still gets them."""
    assert cdk_json_context()["@aws-cdk/core:explicitStackTags"] is True
    manifest = json.loads((synth_dev.outdir / "manifest.json").read_text())
    stacks = {a["properties"].get("stackName", key): a["properties"] for key, a in manifest["artifacts"].items()
              if a["type"] == "aws:cloudformation:stack" and "-dev-" in a["properties"].get("stackName", key)}
    assert len(stacks) == 5, sorted(stacks)
    for name, props in stacks.items():
        assert props.get("tags") == {PROJECT_TAG: PROJECT_SLUG, "environment": "dev"}, name

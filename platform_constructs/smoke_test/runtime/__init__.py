"""The smoke test's runtime, shipped by the SmokeTest construct (platform_constructs/smoke_test/):

  check.py          the check itself (standard library only): runs in the in-cluster Job (the construct
                    puts it in a ConfigMap), or by hand against local mode or a port-forward
  runner.py         the smoke-test Lambda (the construct's code asset: check.py and runner.py)
  pipeline_step.py  the pipeline's post-deployment CodeBuild step, started by invoke.sh
"""

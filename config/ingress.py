"""How the serving endpoint is exposed through an ALB (issue 13): facts shared by config, charts and stacks.

The AWS Load Balancer Controller makes the ALB from the Ingress in k8s_charts/ingress.py; the values here
are the ones a reviewer should be able to read in one place: TLS policy, health check, idle timeout.
"""

from __future__ import annotations

from config.request_limits import RequestLimits

# TLS 1.3 and 1.2 with forward-secret AEAD ciphers only (Elastic Load Balancing User Guide, "Security
# policies for your Application Load Balancer"): the policy AWS recommends for new listeners.
ALB_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
HTTPS_PORT = 443
HTTP_PORT = 80  # listens only to redirect to HTTPS (ssl-redirect)

# vLLM's /health: the one path the serving app answers without an API key (serving/middleware.py OPEN_PATHS),
# 200 only while the engine is alive, so the ALB takes a dead replica out of rotation.
SERVE_HEALTH_PATH = "/health"
WEBUI_HEALTH_PATH = "/health"  # Open WebUI's own, unauthenticated (the chart's probes use it too)
HEALTHCHECK_INTERVAL_S = 15
HEALTHCHECK_TIMEOUT_S = 5

# ALB idle timeout bounds (ELB API: 1-4000 s).
_IDLE_MIN_S, _IDLE_MAX_S = 60, 4000
# The slowest decode rate a request should still survive at: one sequence of a full batch on a busy
# replica. A non-streaming request sends no byte until its last token, so the idle timeout must cover a
# whole max_max_tokens generation at that rate plus a first token queued behind a full batch.
SLOWEST_TOKENS_PER_S = 5
FIRST_TOKEN_ALLOWANCE_S = 120

# WAF rate-based rule of an internet-facing ALB: requests per source IP per evaluation window (5 min).
DEFAULT_WAF_REQUESTS_PER_5MIN = 1000
WAF_RATE_LIMIT_MIN, WAF_RATE_LIMIT_MAX = 10, 2_000_000_000  # AWS WAF RateBasedStatement.Limit bounds


def alb_idle_timeout_s(limits: RequestLimits) -> int:
    """Seconds the ALB keeps a connection with no bytes flowing: long enough for the longest allowed
    non-streamed completion (streams send a chunk per token, so they never idle that long)."""
    need = FIRST_TOKEN_ALLOWANCE_S + -(-limits.max_max_tokens // SLOWEST_TOKENS_PER_S)
    return max(_IDLE_MIN_S, min(_IDLE_MAX_S, need))


def ssm_certificate_reference(parameter_name: str) -> str:
    """A CloudFormation dynamic reference to an SSM String parameter holding the certificate ARN: the
    template names only the parameter, and CloudFormation reads its value when it deploys the stack."""
    return "{{resolve:ssm:%s}}" % parameter_name

"""moto for the destroy-time cleanup's tests: fake credentials, one region, every AWS call mocked."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

MOTO_REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(k, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
    with mock_aws():
        yield boto3.Session(region_name=MOTO_REGION)

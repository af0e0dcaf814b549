from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.provisioning.cfn import Evaluator, load_template

# Values for the parameters that have no default (what an operator must give).
REQUIRED = {
    "AmiId": "ami-0123456789abcdef0",
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "BucketName": "cis-filesearch-landing-dev",
    "OpenSearchUrl": "https://search-files-abc.ap-northeast-1.es.amazonaws.com",
    "OpenSearchDomainArn": "arn:aws:es:ap-northeast-1:123456789012:domain/files",
}


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture
def evaluate(template: dict[str, Any]) -> Callable[..., Evaluator]:
    """An evaluator of the template for the required values plus ``overrides`` (defaults for the rest)."""

    def make(**overrides: Any) -> Evaluator:
        return Evaluator(template, {**REQUIRED, **overrides})

    return make

"""The AWS session a fleet command runs in: profile and region as the AWS CLI takes them, checked up front.

``--profile`` / ``--region`` win; then, as in AWS CLI v2, AWS_REGION, AWS_DEFAULT_REGION and the profile's
region (boto3 itself does not read AWS_REGION, so it is passed on here), AWS_PROFILE and the shared files.
Unlike the worker (which falls back to the guide's region), an operator command with no region refuses to
run: creating a fleet in a region nobody chose is worse than asking. Clients are built on first use, never at
import, and shared for the command's lifetime.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ProfileNotFound

from app.aws import client_config
from provisioning.fleet.errors import FleetConfigError

# boto3-stubs cover only s3 and sqs in this project; these clients are typed loosely (see app.backlog).
Client = Any

_NO_CREDENTIALS = (
    "no AWS credentials found: pass --profile NAME (see `aws configure list-profiles`), set AWS_PROFILE, "
    "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
_NO_REGION = "no AWS region: pass --region (e.g. --region ap-northeast-1) or set AWS_REGION"


class FleetAws:
    """One session and its clients. ``clients`` replaces some of them (tests stub Auto Scaling this way)."""

    def __init__(
        self, session: boto3.session.Session, *, clients: Mapping[str, Client] | None = None
    ) -> None:
        self.session = session
        self._clients: dict[str, Client] = dict(clients or {})
        # One call at a time from a terminal; the project's retry policy and timeouts otherwise.
        self._config: Config = client_config(pool_size=2)

    @classmethod
    def connect(cls, *, profile: str | None, region: str | None) -> FleetAws:
        """A session for ``profile`` / ``region``; FleetConfigError if unusable or no credentials."""
        region = region or os.environ.get("AWS_REGION", "").strip() or None
        try:
            session = boto3.session.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as exc:
            raise FleetConfigError(
                f"{exc}: pass an existing --profile (`aws configure list-profiles`)"
            ) from exc
        if not session.region_name:
            raise FleetConfigError(_NO_REGION)
        try:
            credentials = session.get_credentials()
        except BotoCoreError as exc:  # a broken profile: SSO not logged in, bad credential_process, ...
            raise FleetConfigError(f"AWS credentials could not be loaded: {exc}") from exc
        if credentials is None:
            raise FleetConfigError(_NO_CREDENTIALS)
        return cls(session)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Client:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=self._config)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def cloudformation(self) -> Client:
        return self.client("cloudformation")

    @property
    def autoscaling(self) -> Client:
        return self.client("autoscaling")

    @property
    def ec2(self) -> Client:
        return self.client("ec2")

    @property
    def s3(self) -> Client:
        return self.client("s3")

    @property
    def sqs(self) -> Client:
        return self.client("sqs")

    @property
    def cloudwatch(self) -> Client:
        return self.client("cloudwatch")

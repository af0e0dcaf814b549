#!/usr/bin/env bash
# The CloudWatch agent from the AL2023 repositories (not the S3 download the guide uses: the repository's
# package is signed, locked to the source AMI's release like every other package, and needs no network
# beyond the repositories). Configured by install-worker-runtime.sh; not started here, so no agent state
# (file offsets, its own log) from the build instance ends up in the AMI.
set -euo pipefail

dnf install -y amazon-cloudwatch-agent
rpm -q amazon-cloudwatch-agent

#!/usr/bin/env bash
# Only what is safe to drop from the boot of a worker that runs one container:
# - dnf-makecache.timer refreshes repository metadata in the background a few minutes after boot and
#   then periodically: network, CPU credits and EBS reads on a burstable instance, for a machine that
#   never installs a package after it is baked (AL2023 applies no updates at launch either).
# Nothing on the path to the first message is removed: cloud-init still runs the user data and makes
# the host keys, sshd and the SSM agent stay for debugging.
set -euo pipefail

if systemctl cat dnf-makecache.timer >/dev/null 2>&1; then
  systemctl disable --now dnf-makecache.timer
fi

# How the build instance booted, in the build log: a baseline for the README's boot budget.
systemd-analyze time || true
systemd-analyze critical-chain multi-user.target || true
systemd-analyze blame | head -n 15 || true

#!/usr/bin/env bash
# The last step: forget the build instance, so every instance launched from the AMI boots as a new one.
set -euo pipefail
: "${UPLOAD_DIRS:?}"

# What the file provisioners uploaded, and the package caches.
read -r -a uploads <<<"$UPLOAD_DIRS"
rm -rf "${uploads[@]}"
dnf clean all
rm -rf /var/cache/dnf/*

# Registry credentials an ECR pull may have left, and shell histories.
rm -rf /root/.docker
rm -f /root/.bash_history /home/*/.bash_history

# cloud-init: with its state gone the next boot is a first boot for it, so it runs the launch template's
# user data, writes the instance's SSH key and makes new host keys.
cloud-init clean --logs
rm -f /etc/ssh/ssh_host_*
rm -f /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys

# Machine identity. machine-id is emptied, not deleted: systemd fills an empty one at boot, whereas a
# missing one makes the boot a "first boot", which re-applies the distribution's unit presets and could
# switch off the services enabled here. The random seed must not be shared by every instance.
truncate -s 0 /etc/machine-id
rm -f /var/lib/systemd/random-seed

# Logs: the journal of the build, the agent's (it never ran, but make sure), and every log file.
journalctl --rotate
journalctl --vacuum-time=1s
rm -rf /var/log/journal/*
rm -rf /opt/aws/amazon-cloudwatch-agent/logs/*
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*-[0-9]*' \) -delete
find /var/log -type f -exec truncate -s 0 {} +

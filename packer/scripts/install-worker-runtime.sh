#!/usr/bin/env bash
# The worker's runtime wiring: the systemd unit, its log file and rotation, and the CloudWatch agent
# config that ships that log and the worker's /metrics. Both services are enabled; neither starts here.
set -euo pipefail
: "${FILES_DIR:?}" "${ENVIRONMENT:?}"
readonly AGENT=/opt/aws/amazon-cloudwatch-agent
readonly AGENT_CONFIG=/opt/aws/amazon-cloudwatch-agent/etc/filefleet.json

install -m 0644 "$FILES_DIR/filefleet.service" /etc/systemd/system/filefleet.service
# The unit appends the container's output here; systemd opens the file before it creates any directory
# the unit could declare, so the directory must already exist.
install -d -m 0755 /var/log/filefleet
dnf install -y logrotate  # normally there already; the rule below is useless without it
install -m 0644 "$FILES_DIR/filefleet.logrotate" /etc/logrotate.d/filefleet

# The scrape config goes where the agent config points (prometheus_config_path). fetch-config (without
# -s: nothing starts) checks the agent config against the installed agent's own schema and translates
# it; the agent translates it again at every start, with the launched instance's identity.
install -m 0644 "$FILES_DIR/prometheus.yaml" "$AGENT/etc/prometheus.yaml"
# The config names the guide's log groups for "dev"; the stack's Environment decides (provisioning/fleet.yaml).
sed "s#/aws/cis-file-processor/dev/#/aws/cis-file-processor/$ENVIRONMENT/#g" \
  "$FILES_DIR/amazon-cloudwatch-agent.json" >"$AGENT_CONFIG"
"$AGENT/bin/amazon-cloudwatch-agent-ctl" -a fetch-config -m ec2 -c "file:$AGENT_CONFIG"

systemctl daemon-reload
systemd-analyze verify /etc/systemd/system/filefleet.service
# filefleet.service waits for /etc/filefleet/worker.env (ConditionPathExists): on the first boot the
# user data writes it and starts the unit; after a reboot the unit starts by itself.
systemctl enable filefleet.service amazon-cloudwatch-agent.service

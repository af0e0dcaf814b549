#!/usr/bin/env bash
# Docker from the AL2023 repositories, enabled so it starts at boot in parallel with the rest of the system
# instead of on the first `docker` call. The repositories are locked to the source AMI's release (AL2023's
# deterministic upgrades), so the source AMI named in the tags fixes the exact version; DOCKER_VERSION
# only refuses a new major.minor that nobody has tested.
set -euo pipefail
: "${DOCKER_VERSION:?set from variables.pkr.hcl}"

dnf install -y "docker-${DOCKER_VERSION}.*"
installed=$(rpm -q --queryformat '%{VERSION}' docker)
[[ $installed == "${DOCKER_VERSION}".* ]] || {
  echo "docker $installed installed, expected ${DOCKER_VERSION}.*: update docker_version after testing" >&2
  exit 1
}

systemctl enable --now docker.service
docker version
# (load-worker-image.sh then runs the image once with the unit's flags, --init included: that is the
# check that this Docker build ships its init.)

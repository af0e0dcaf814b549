#!/usr/bin/env bash
# Puts the worker image into Docker's store on the AMI and tags it filefleet:current, the only name the
# unit runs (it pulls nothing). WORKER_IMAGE says where the image comes from:
#   sha256:<id>                            the uploaded `docker save` archive (the default)
#   ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:<digest>   pulled from ECR with the instance profile
# Either way the image must be exactly the one named, since the AMI is tagged with that name.
set -euo pipefail
: "${WORKER_IMAGE:?}" "${WORKER_IMAGE_ARCHIVE:?}" "${GIT_REVISION:?}"
readonly TAG=filefleet:current

case "$WORKER_IMAGE" in
  sha256:*)
    docker load --input "$WORKER_IMAGE_ARCHIVE"
    rm -f "$WORKER_IMAGE_ARCHIVE"  # the snapshot should not carry it twice
    ;;
  *.dkr.ecr.*.amazonaws.com/*@sha256:*)
    registry=${WORKER_IMAGE%%/*}
    region=${registry#*.dkr.ecr.}
    region=${region%%.amazonaws.com}
    aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
    docker pull "$WORKER_IMAGE"
    docker logout "$registry"  # cleanup.sh removes /root/.docker as well
    ;;
  *)
    echo "WORKER_IMAGE=$WORKER_IMAGE is neither an image ID nor an ECR reference by digest" >&2
    exit 64
    ;;
esac

docker image inspect "$WORKER_IMAGE" >/dev/null 2>&1 || {
  echo "$WORKER_IMAGE is not in Docker's store after loading: the archive holds another image" \
    "(docker image inspect --format '{{.Id}}' the image you saved, and pass that as worker_image)" >&2
  exit 1
}
docker tag "$WORKER_IMAGE" "$TAG"

# The image must start on this instance's architecture and kernel with the unit's flags; an x86_64
# image on an arm64 build fails here, not on the first Spot instance.
docker run --rm --pull never --init --read-only --tmpfs /tmp --network host --cap-drop ALL \
  --security-opt no-new-privileges "$TAG" filefleet --help >/dev/null

# What this AMI runs, for an operator on the instance (the AMI's tags say the same from the outside).
install -d -m 0755 /etc/filefleet
cat >/etc/filefleet/image <<INFO
# The worker image baked into this AMI, tagged $TAG (packer/scripts/load-worker-image.sh).
WORKER_IMAGE=$WORKER_IMAGE
WORKER_IMAGE_ID=$(docker image inspect --format '{{.Id}}' "$TAG")
WORKER_IMAGE_REVISION=$(docker image inspect --format '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$TAG")
AMI_GIT_REVISION=$GIT_REVISION
INFO
cat /etc/filefleet/image

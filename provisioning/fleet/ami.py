"""The AMI a stack is about to launch must exist, here, and be ready: checked before any change set.

Otherwise CloudFormation accepts the parameter (a plain String, or even AWS::EC2::Image::Id in some cases)
and the failure surfaces minutes later, as instances that never launch.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from provisioning.fleet.aws import Client
from provisioning.fleet.errors import FleetConfigError

_NOT_FOUND = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
_MALFORMED = "InvalidAMIID.Malformed"


def require_ami(ec2: Client, ami_id: str) -> str:
    """The AMI's name; FleetConfigError when it is missing, malformed or not 'available'."""
    region = ec2.meta.region_name
    try:
        images = ec2.describe_images(ImageIds=[ami_id]).get("Images", [])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == _MALFORMED:
            raise FleetConfigError(f"AmiId={ami_id!r} is not an AMI id (ami-...)") from exc
        if code not in _NOT_FOUND:
            raise
        images = []
    if not images:
        raise FleetConfigError(
            f"AMI {ami_id} does not exist in {region} (or this account may not use it): build it with Packer "
            "(see packer/), or copy it to this region, or pass the --region it is in"
        )
    image = images[0]
    state = image.get("State", "available")
    if state != "available":
        raise FleetConfigError(
            f"AMI {ami_id} in {region} is {state}, not available: wait for it, or rebuild it"
        )
    return str(image.get("Name") or ami_id)

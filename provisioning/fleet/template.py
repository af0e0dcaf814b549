"""The template being deployed: read from a file (or the packaged fleet.yaml), summarised by CloudFormation.

The parameters are learnt from CloudFormation's own GetTemplateSummary rather than by parsing YAML here: it
understands every short-form tag (!Ref, !Sub, ...), needs no YAML library at run time, and rejects a template
it cannot parse before any change set exists.

CloudFormation takes a template inline (TemplateBody) only up to 51,200 bytes; a larger one is sent without
its comment lines, and if that is still too large it must be read from S3 (TemplateURL, up to 1 MB), as
`aws cloudformation deploy --s3-bucket` does. With ``--template-bucket`` a
large template is uploaded under a name derived from its content, so deploying the same template twice
uploads one object, and the change set records exactly the bytes that were reviewed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from provisioning.fleet.aws import Client, FleetAws
from provisioning.fleet.compact import without_comment_lines
from provisioning.fleet.errors import FleetConfigError

PACKAGED_TEMPLATE = "fleet.yaml"
TEMPLATE_BODY_LIMIT = 51_200  # bytes: CreateChangeSet / GetTemplateSummary TemplateBody
TEMPLATE_URL_LIMIT = 1_000_000  # bytes: a template read from S3
TEMPLATE_PREFIX = "filefleet/templates/"


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: str | None  # None: the template has no default, so a new stack must be given a value
    no_echo: bool


@dataclass(frozen=True)
class Template:
    source: str  # where the body came from, for messages
    body: str
    parameters: dict[str, ParameterSpec]
    url: str | None = None  # set when the body is too large to send inline and went through S3

    def as_api(self) -> dict[str, Any]:
        """The request fragment that names this template: TemplateURL when uploaded, else TemplateBody."""
        return {"TemplateURL": self.url} if self.url else {"TemplateBody": self.body}


def read_template(path: Path | None) -> tuple[str, str]:
    """(source, body) of ``path``, or of the fleet.yaml shipped in this package when ``path`` is None."""
    if path is None:
        packaged = resources.files("provisioning").joinpath(PACKAGED_TEMPLATE)
        source = f"the packaged {PACKAGED_TEMPLATE} ({packaged})"
        if not packaged.is_file():
            raise FleetConfigError(f"{source} is missing: pass --template PATH")
        return source, packaged.read_text(encoding="utf-8")
    try:
        return str(path), path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetConfigError(f"cannot read the template {path}: {exc.strerror or exc}") from exc


def load_template(aws: FleetAws, path: Path | None, *, bucket: str | None) -> Template:
    """Read, upload if it must go through S3, summarise; FleetConfigError when CloudFormation rejects it."""
    source, body = read_template(path)
    if len(body.encode("utf-8")) > TEMPLATE_BODY_LIMIT:
        body = without_comment_lines(body)  # the same template; often small enough to go inline then
    size = len(body.encode("utf-8"))
    url = None
    if size > TEMPLATE_BODY_LIMIT:
        if size > TEMPLATE_URL_LIMIT:
            raise FleetConfigError(f"{source} is {size} bytes, over CloudFormation's 1 MB template limit")
        if not bucket:
            raise FleetConfigError(
                f"{source} is {size} bytes, over the {TEMPLATE_BODY_LIMIT} bytes CloudFormation takes "
                f"inline: pass --template-bucket BUCKET (one of yours in {aws.region}) to send it through S3"
            )
        url = upload_template(aws, body, bucket=bucket)
    template = {"TemplateURL": url} if url else {"TemplateBody": body}
    return Template(
        source=source, body=body, parameters=_summarise(aws.cloudformation, template, source), url=url
    )


def upload_template(aws: FleetAws, body: str, *, bucket: str) -> str:
    """Put ``body`` at a content-addressed key in ``bucket``; the HTTPS URL CloudFormation reads it from."""
    key = f"{TEMPLATE_PREFIX}fleet-{hashlib.sha256(body.encode('utf-8')).hexdigest()[:16]}.yaml"
    try:
        aws.s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/x-yaml")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        reason = f"{error.get('Code')}: {error.get('Message', '')}"
        raise FleetConfigError(f"cannot upload the template to s3://{bucket}/{key}: {reason}") from exc
    # Path style: valid for every bucket name, dotted ones included (virtual-hosted TLS breaks on dots).
    return f"https://s3.{aws.region}.amazonaws.com/{bucket}/{key}"


def _summarise(cloudformation: Client, template: dict[str, Any], source: str) -> dict[str, ParameterSpec]:
    try:
        summary = cloudformation.get_template_summary(**template)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            message = exc.response["Error"].get("Message", "")
            raise FleetConfigError(f"CloudFormation rejects {source}: {message}") from exc
        raise
    return {
        item["ParameterKey"]: ParameterSpec(
            name=item["ParameterKey"],
            default=item.get("DefaultValue"),
            no_echo=bool(item.get("NoEcho", False)),
        )
        for item in summary.get("Parameters", [])
    }

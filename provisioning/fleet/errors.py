"""The two ways a fleet command ends badly, matching the CLI's exit codes.

``FleetConfigError`` (exit 2): the command refused to start, before changing anything: no credentials, a
missing AMI, a stack in a state that cannot be updated, a bad parameter. The message names what is wrong and
what to do, on one line. It is an ``app.config.ConfigError`` so that ``filefleet``'s own main treats it alike.

``FleetFailure`` (exit 1): something failed while running: a stack operation rolled back, a refresh
failed, a wait timed out. The message says what happened and where to look.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    TokenRetrievalError,
)

from app.config import ConfigError


class FleetConfigError(ConfigError):
    """Refused before acting: the operator must fix something first."""


class FleetFailure(Exception):
    """Failed while acting; the operation may have left AWS in a state the message describes."""


class OperationTimedOut(FleetFailure):
    """A wait ran out of time; the operation itself goes on in AWS."""


# Credentials that exist but AWS refuses: expired session tokens, deleted keys, a skewed clock. The operator
# fixes these (log in again, fix the clock), so they are configuration problems, not failures.
_REFUSED_CREDENTIALS = frozenset(
    {
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_NOT_PERMITTED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


def explain_aws_error(exc: Exception, *, action: str) -> FleetConfigError | FleetFailure:
    """An AWS error as the operator should read it: what we were doing, what AWS said, what to do."""
    if isinstance(exc, ClientError):
        return _explain_refusal(exc, action=action)
    if isinstance(exc, NoCredentialsError | TokenRetrievalError):
        return FleetConfigError(f"{action}: {exc}; log in again or pass --profile")
    if isinstance(exc, NoRegionError):
        return FleetConfigError(f"{action}: {exc}; pass --region")
    hint = " (check the network and --region)" if isinstance(exc, EndpointConnectionError) else ""
    return FleetFailure(f"{action}: {exc}{hint}")


def _explain_refusal(exc: ClientError, *, action: str) -> FleetConfigError | FleetFailure:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "Unknown")), str(error.get("Message", ""))
    if code in _REFUSED_CREDENTIALS:
        return FleetConfigError(
            f"{action}: AWS refused the credentials ({code}: {message}); refresh them "
            "(e.g. `aws sso login --profile NAME`) and try again"
        )
    if code in _NOT_PERMITTED:
        return FleetConfigError(f"{action}: not permitted ({code}: {message}); use a role that may do this")
    return FleetFailure(f"{action}: {code}: {message}")

"""Asking before acting. Without a terminal to ask on, refuse rather than assume either answer.

A deploy or destroy run from a script or CI job with no --yes would otherwise block on a prompt nobody sees,
or worse, act on an empty answer. So stdin that is not a terminal and no --yes is a configuration problem
(exit 2), and the message says to pass --yes.
"""

from __future__ import annotations

import sys
from typing import TextIO

from provisioning.fleet.errors import FleetConfigError

_YES = ("y", "yes")


def confirm(
    question: str,
    *,
    assume_yes: bool,
    expected: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> bool:
    """True when the operator agrees: ``--yes``, or "y"/"yes" (exactly ``expected``) typed at a terminal."""
    if assume_yes:
        return True
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if not stdin.isatty():
        raise FleetConfigError(
            "not asking: stdin is not a terminal; pass --yes to go ahead without confirmation"
        )
    hint = f"type {expected} to confirm" if expected else "y/N"
    stdout.write(f"{question} [{hint}] ")
    stdout.flush()
    answer = stdin.readline().strip()
    return answer == expected if expected else answer.lower() in _YES

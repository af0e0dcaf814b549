"""A template without its comment lines: the same template to CloudFormation, in fewer bytes.

CloudFormation takes a template inline only up to 51,200 bytes, and the fleet's explains itself in
comments. Full-line comments are dropped, except inside block scalars (``|``, ``>``), whose lines are
content: the user data's ``#cloud-config`` is one. Nothing else changes, so what the operator reviewed in
the file is what CloudFormation reads.
"""

from __future__ import annotations

import re

_BLOCK_SCALAR_START = re.compile(r"(?:^|[\s:])[|>][-+]?[0-9]?\s*$")


def without_comment_lines(text: str) -> str:
    lines: list[str] = []
    block_indent: int | None = None  # the indentation a block scalar's content must exceed
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None:
            if not stripped or indent > block_indent:
                lines.append(line)
                continue
            block_indent = None
        if stripped.startswith("#"):
            continue
        lines.append(line)
        if _BLOCK_SCALAR_START.search(line.rstrip("\n")):
            block_indent = indent
    return "".join(lines)

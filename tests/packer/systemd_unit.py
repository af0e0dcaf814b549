"""Reading packer/files/filefleet.service the way systemd does, far enough to run its commands elsewhere.

systemd itself (`systemd-analyze verify`) checks the file; this only gives the tests its settings and its
command lines: continuation lines joined, exec prefixes dropped, words split (systemd's quoting is the
shell's for what the unit uses), and the one specifier the unit uses, %N, expanded to a name of our choice.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.packer.conftest import FILES

UNIT = FILES / "filefleet.service"


@dataclass(frozen=True)
class Unit:
    settings: dict[str, list[str]]  # "Section.Key" → every value, in order (Exec* may repeat)

    @classmethod
    def read(cls, path: Path = UNIT) -> Unit:
        text = re.sub(r"\\\n\s*", " ", path.read_text())  # a trailing backslash continues the line
        settings: dict[str, list[str]] = {}
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
        return cls(settings)

    def one(self, key: str) -> str:
        (value,) = self.settings[key]
        return value

    def command(self, key: str, *, name: str = "filefleet") -> list[str]:
        """The argv systemd would run for an Exec* setting, with %N (the unit's name) set to `name`."""
        line = self.one(key).lstrip("-@+!:")  # exec prefixes: ignore failure, argv0, privileges
        unknown = set(re.findall(r"%[^N%]", line))
        assert not unknown, f"specifiers {unknown} in {key}: teach tests/packer/systemd_unit.py about them"
        return [word.replace("%N", name).replace("%%", "%") for word in shlex.split(line)]


def option_value(argv: list[str], option: str) -> str:
    """The value of `--option value` (or `--option=value`) in a command line."""
    for index, word in enumerate(argv):
        if word == option:
            return argv[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{option} not in {shlex.join(argv)}")

"""One JSON object per line on stdout: timestamp, level, event, and the fields of what happened.

Credentials never reach the log: botocore's DEBUG output carries signed headers, so its loggers are held
at INFO whatever LOG_LEVEL says, and any field whose name suggests a secret is masked.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_CHATTY_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")
_SECRET_FIELD = re.compile(r"secret|password|passwd|token|authorization|credential|session_key|api_key", re.I)
MASK = "***"


@functools.lru_cache(maxsize=1024)
def _is_secret(name: str) -> bool:
    return _SECRET_FIELD.search(name) is not None  # field names repeat: match each once, not per line


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(vars(record).items()):
            if value is not None and _is_secret(name):
                setattr(record, name, MASK)
        return True


class _Formatter(JsonFormatter):
    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()


def configure_logging(level: str, *, stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        _Formatter(
            "%(message)s %(name)s",
            rename_fields={"message": "event", "name": "logger"},
            timestamp=True,
            json_ensure_ascii=False,
        )
    )
    handler.addFilter(_MaskSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # INFO from botocore (where credentials were found, which endpoint) only helps when debugging.
    library_level = logging.INFO if level == "DEBUG" else max(logging.getLevelName(level), logging.WARNING)
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import MASK, configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    yield out
    root.handlers[:], root.level = saved[0], saved[1]
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_timestamp_level_and_event(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    logging.getLogger("app.worker").info(
        "message.settled",
        extra={"message_id": "m1", "bucket": "b", "key": "写真 1.jpg", "outcome": "ack", "duration_ms": 3.2},
    )
    (line,) = _lines(stream)
    assert line["event"] == "message.settled" and line["level"] == "info" and line["logger"] == "app.worker"
    assert str(line["timestamp"]).endswith("+00:00")
    assert (line["key"], line["outcome"], line["duration_ms"]) == ("写真 1.jpg", "ack", 3.2)


def test_fields_that_look_like_secrets_are_masked(stream: io.StringIO) -> None:
    configure_logging("INFO", stream=stream)
    logging.getLogger("app").warning(
        "x",
        extra={
            "aws_secret_access_key": "abc",
            "session_token": "def",
            "Authorization": "AWS4-HMAC",
            "key": "k",
        },
    )
    (line,) = _lines(stream)
    assert line["aws_secret_access_key"] == line["session_token"] == line["Authorization"] == MASK
    assert line["key"] == "k"


def test_botocore_debug_output_is_held_back_even_at_debug(stream: io.StringIO) -> None:
    configure_logging("DEBUG", stream=stream)
    logging.getLogger("botocore.endpoint").debug(
        "Sending http request: headers={'Authorization': 'AWS4 ...'}"
    )
    logging.getLogger("app").debug("ours")
    assert [line["event"] for line in _lines(stream)] == ["ours"]
    configure_logging("INFO", stream=stream)
    assert logging.getLogger("botocore").level == logging.WARNING

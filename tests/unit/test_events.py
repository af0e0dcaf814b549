from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.events import Action, FileEvent, InvalidMessage, ParsedBody, Source, parse_body
from tests.support.bodies import (
    AUTOSCALING_TEST_NOTIFICATION,
    S3_TEST_EVENT,
    eventbridge_body,
    s3_body,
    s3_record,
    sns_envelope,
)

# The machine is shared: generation speed says nothing about the parser, so only correctness is checked.
_noisy_machine = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _one(body: str, **kwargs: Any) -> FileEvent:
    parsed = parse_body(body, default_bucket=kwargs.get("default_bucket"))
    (event,) = parsed.events
    return event


@pytest.mark.parametrize(
    ("encoded", "key"),
    [
        ("red+flower.jpg", "red flower.jpg"),
        ("in%2Fimg.png", "in/img.png"),
        ("x+y%2Bz%2F%C3%BC.jpg", "x y+z/ü.jpg"),  # as moto and S3 send it
        ("%E5%86%99%E7%9C%9F.jpeg", "写真.jpeg"),
        ("100%25.txt", "100%.txt"),
    ],
)
def test_s3_keys_are_url_decoded(encoded: str, key: str) -> None:
    record = s3_record("placeholder")
    record["s3"]["object"]["key"] = encoded
    assert _one(json.dumps({"Records": [record]})).key == key


def test_an_s3_put_carries_everything_the_index_needs() -> None:
    event = _one(s3_body("a b+c/ü.jpg", bucket="landing", size=42, sequencer="0A1B2C", version_id="v1"))
    assert event == FileEvent(
        action=Action.CREATED,
        bucket="landing",
        key="a b+c/ü.jpg",
        source=Source.S3,
        event_name="ObjectCreated:Put",
        size=42,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        version_id="v1",
        sequencer="0A1B2C",
        event_time="2026-11-30T04:00:00.000Z",
    )


def test_several_records_in_one_body_are_all_returned_in_order() -> None:
    parsed = parse_body(s3_body("1.jpg", "2.jpg", "3.jpg"), default_bucket=None)
    assert [e.key for e in parsed.events] == ["1.jpg", "2.jpg", "3.jpg"]


@pytest.mark.parametrize(
    ("event_name", "action"),
    [
        ("ObjectCreated:Put", Action.CREATED),
        ("ObjectCreated:CompleteMultipartUpload", Action.CREATED),
        ("ObjectCreated:Copy", Action.CREATED),
        ("ObjectRemoved:Delete", Action.REMOVED),
        ("ObjectRemoved:DeleteMarkerCreated", Action.REMOVED),
        ("LifecycleExpiration:Delete", Action.REMOVED),
    ],
)
def test_s3_event_names_map_to_actions(event_name: str, action: Action) -> None:
    assert _one(s3_body("k", event_name=event_name)).action is action


def test_a_removal_has_no_size_and_may_have_no_sequencer() -> None:
    event = _one(s3_body("gone.jpg", event_name="ObjectRemoved:Delete", sequencer=None))
    assert (event.action, event.size, event.sequencer) == (Action.REMOVED, None, None)


@pytest.mark.parametrize("version", ["2.0", "2.1", "2.2", "2.3", "2.6", "2.9"])
def test_any_s3_event_version_2x_is_accepted(version: str) -> None:
    record = s3_record("k")
    record["eventVersion"] = version
    assert _one(json.dumps({"Records": [record]})).key == "k"


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectRestore:Completed",
        "ObjectTagging:Put",
        "ObjectAcl:Put",
        "Replication:OperationFailedReplication",
    ],
)
def test_s3_events_that_do_not_change_content_are_ignored(event_name: str) -> None:
    parsed = parse_body(s3_body("k", event_name=event_name), default_bucket=None)
    assert parsed == ParsedBody(events=(), ignored=(event_name,))


@pytest.mark.parametrize(
    ("body", "label"),
    [(S3_TEST_EVENT, "s3:TestEvent"), (AUTOSCALING_TEST_NOTIFICATION, "autoscaling:TEST_NOTIFICATION")],
)
def test_test_notifications_are_ignored(body: str, label: str) -> None:
    assert parse_body(body, default_bucket=None) == ParsedBody(events=(), ignored=(label,))
    assert parse_body(sns_envelope(body), default_bucket=None).ignored == (label,)


def test_eventbridge_keys_are_taken_verbatim() -> None:
    created = _one(eventbridge_body("a b+c/ü.jpg", bucket="landing"))
    assert (created.action, created.bucket, created.key, created.source) == (
        Action.CREATED,
        "landing",
        "a b+c/ü.jpg",
        Source.EVENTBRIDGE,
    )
    assert (created.size, created.sequencer, created.version_id) == (
        5,
        "00617F08299329D189",
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
    )
    deleted = _one(eventbridge_body("a%20b.jpg", detail_type="Object Deleted"))
    assert (deleted.action, deleted.key, deleted.size) == (Action.REMOVED, "a%20b.jpg", None)


def test_other_eventbridge_s3_events_are_ignored() -> None:
    parsed = parse_body(eventbridge_body("k", detail_type="Object Restore Completed"), default_bucket=None)
    assert parsed.events == () and parsed.ignored == ("EventBridge Object Restore Completed",)


def test_an_sns_envelope_is_unwrapped() -> None:
    assert _one(sns_envelope(s3_body("via sns.jpg"))).key == "via sns.jpg"
    assert _one(sns_envelope(eventbridge_body("eb.jpg"))).key == "eb.jpg"


def test_the_guides_format_takes_its_bucket_from_configuration() -> None:
    event = _one(json.dumps({"s3Key": "docs/a b.pdf", "fileSize": 10}), default_bucket="landing")
    assert (event.bucket, event.key, event.size, event.source) == (
        "landing",
        "docs/a b.pdf",
        10,
        Source.GUIDE,
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "not UTF-8"),
        ("", "not JSON"),
        ("[1, 2]", "JSON list"),
        ("{}", "unrecognised message"),
        ('{"hello": "world"}', "top-level keys: hello"),
        ('{"Records": []}', "non-empty list"),
        ('{"Records": [1]}', "not an object"),
        (json.dumps({"Records": [{**s3_record("k"), "eventSource": "aws:dynamodb"}]}), "eventSource"),
        (json.dumps({"Records": [{**s3_record("k"), "eventVersion": "1.0"}]}), "expected 2.x"),
        (
            json.dumps({"Records": [{**s3_record("k"), "s3": {"bucket": {"name": "b"}}}]}),
            "s3.object is missing",
        ),
        (s3_body("k", sequencer="not-hex"), "not a hexadecimal"),
        (json.dumps({"s3Key": "x"}), "set S3_BUCKET"),
        (json.dumps({"s3Key": ""}), "s3Key is missing"),
        (json.dumps({"s3Key": "x" * 1025}), "over S3's 1024"),
        (json.dumps({"s3Key": "\ud800"}), "not valid Unicode"),
        (
            json.dumps({"Type": "SubscriptionConfirmation", "SubscribeURL": "https://x"}),
            "confirm the subscription",
        ),
        (json.dumps({"Type": "Notification", "Message": "nope"}), "Message is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_anything_else_is_a_permanent_error_with_a_reason(body: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as error:
        parse_body(body, default_bucket=None if "S3_BUCKET" in reason else "landing")
    assert reason in error.value.reason


def test_an_undecodable_percent_sequence_is_an_error_not_a_wrong_key() -> None:
    record = s3_record("k")
    record["s3"]["object"]["key"] = "bad%C3.jpg"
    with pytest.raises(InvalidMessage, match="percent-encoded"):
        parse_body(json.dumps({"Records": [record]}), default_bucket=None)


@_noisy_machine
@given(st.binary(max_size=2048))
def test_any_bytes_parse_or_fail_with_a_classified_error(raw: bytes) -> None:
    try:
        parsed = parse_body(raw, default_bucket="landing")
    except InvalidMessage as error:
        assert error.reason
    else:
        assert isinstance(parsed, ParsedBody)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
_keys = st.sampled_from(
    ["Records", "Type", "Message", "Event", "source", "detail-type", "detail", "s3Key", "fileSize"]
)


@_noisy_machine
@given(st.dictionaries(_keys, _json, max_size=5))
def test_any_json_object_with_known_keys_parses_or_fails_classified(document: dict[str, Any]) -> None:
    try:
        parse_body(json.dumps(document), default_bucket="landing")
    except InvalidMessage as error:
        assert error.reason


@_noisy_machine
@given(st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=5), st.data())
def test_mutated_s3_records_parse_or_fail_classified(keys: list[str], data: st.DataObject) -> None:
    records = [s3_record(k) for k in keys]
    for record in records:
        path = data.draw(st.sampled_from([("s3",), ("s3", "object"), ("s3", "bucket"), ()]))
        target = record
        for step in path:
            target = target[step]
        target[data.draw(st.sampled_from(["key", "size", "name", "eventName", "sequencer", "object"]))] = (
            data.draw(_json)
        )
    try:
        parse_body(json.dumps({"Records": records}), default_bucket=None)
    except InvalidMessage as error:
        assert error.reason


@_noisy_machine
@given(st.text(min_size=1, max_size=300).filter(lambda k: len(k.encode("utf-8", "surrogatepass")) <= 1024))
def test_any_key_survives_s3s_encoding(key: str) -> None:
    record = s3_record("placeholder")
    record["s3"]["object"]["key"] = quote_plus(key.encode("utf-8", "surrogatepass"), safe="")
    try:
        assert _one(json.dumps({"Records": [record]})).key == key
    except InvalidMessage as error:  # lone surrogates cannot be S3 keys
        assert "percent-encoded" in error.reason or "Unicode" in error.reason
